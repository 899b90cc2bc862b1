/* udp_recv: the benchmarks' UDP packet sink. Binds a UDP port, prints "ready" once it can receive,
 * then drains the socket with recvmmsg batches and counts packets and bytes from the first packet
 * on. It stops when no packet arrived for IDLE seconds after the first one, after SECONDS in all,
 * or on SIGTERM/SIGINT, and prints one JSON line: packets, bytes, the seconds between the first
 * and the last packet (the measured window: rate = packets / window), and its own user/system CPU
 * seconds (getrusage).
 *
 *   udp_recv -p PORT [-a BIND_IP] [-t SECONDS] [-i IDLE_SECONDS] [-b BATCH] */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_BATCH 1024
#define BUF 2048

static volatile sig_atomic_t stop;

static void on_signal(int sig) {
    (void)sig;
    stop = 1;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(void) {
    fprintf(stderr, "usage: udp_recv -p PORT [-a BIND_IP] [-t SECONDS] [-i IDLE_SECONDS] [-b BATCH]\n");
    exit(2);
}

int main(int argc, char **argv) {
    const char *ip = "0.0.0.0";
    int port = 0, batch = 64, opt;
    double seconds = 60, idle = 0.5;
    while ((opt = getopt(argc, argv, "p:a:t:i:b:")) != -1) {
        switch (opt) {
        case 'p': port = atoi(optarg); break;
        case 'a': ip = optarg; break;
        case 't': seconds = atof(optarg); break;
        case 'i': idle = atof(optarg); break;
        case 'b': batch = atoi(optarg); break;
        default: usage();
        }
    }
    if (port <= 0 || port > 65535 || seconds <= 0 || idle <= 0 || batch < 1 || batch > MAX_BATCH) usage();
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    if (inet_pton(AF_INET, ip, &addr.sin_addr) != 1) usage();
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL); /* no SA_RESTART: a blocked recvmmsg returns EINTR */
    sigaction(SIGINT, &sa, NULL);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    int rcvbuf = 8 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct timeval tv = {0, 100000}; /* wake up every 100 ms to check the idle and total limits */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        perror("udp_recv: socket/bind");
        return 1;
    }
    static char bufs[MAX_BATCH][BUF];
    static struct mmsghdr msgs[MAX_BATCH];
    static struct iovec iov[MAX_BATCH];
    for (int i = 0; i < batch; i++) {
        iov[i].iov_base = bufs[i];
        iov[i].iov_len = BUF;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    printf("ready\n");
    fflush(stdout);
    unsigned long long packets = 0, bytes = 0;
    double start = now(), first = 0, last = 0;
    while (!stop) {
        int got = recvmmsg(fd, msgs, (unsigned)batch, MSG_WAITFORONE, NULL);
        double t = now();
        if (got > 0) {
            if (!packets) first = t;
            last = t;
            packets += (unsigned long long)got;
            for (int i = 0; i < got; i++) bytes += msgs[i].msg_len;
        } else if (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            perror("udp_recv: recvmmsg");
            return 1;
        }
        if (t - start > seconds || (packets && t - last > idle)) break;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"packets\": %llu, \"bytes\": %llu, \"window_s\": %.6f, "
           "\"cpu_user_s\": %.6f, \"cpu_sys_s\": %.6f}\n",
           packets, bytes, packets ? last - first : 0.0,
           (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6,
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6);
    return 0;
}
