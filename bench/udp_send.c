/* udp_send: the benchmarks' UDP packet generator. One connected UDP socket, fixed-size payloads
 * sent in sendmmsg batches (one syscall per batch, so the generator spends little of its CPU on
 * itself and the datapath under test is the limit, not the sender as with iperf3 -u), flat out or
 * paced to a given rate, for a given duration. Prints one JSON line: packets and bytes the kernel
 * accepted, the seconds it ran and the sender's own user/system CPU seconds (getrusage).
 *
 *   udp_send -d IP -p PORT [-s PAYLOAD_BYTES] [-t SECONDS] [-r PPS] [-b BATCH]
 *
 * -r 0 (the default) is flat out. Errors from the socket (ENOBUFS, ECONNREFUSED from an ICMP
 * unreachable) are counted, not fatal: a benchmark reads them from the output. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_BATCH 1024

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(void) {
    fprintf(stderr, "usage: udp_send -d IP -p PORT [-s PAYLOAD_BYTES] [-t SECONDS] [-r PPS] [-b BATCH]\n");
    exit(2);
}

int main(int argc, char **argv) {
    const char *ip = NULL;
    int port = 0, size = 64, batch = 64, opt;
    double seconds = 1, rate = 0;
    while ((opt = getopt(argc, argv, "d:p:s:t:r:b:")) != -1) {
        switch (opt) {
        case 'd': ip = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 's': size = atoi(optarg); break;
        case 't': seconds = atof(optarg); break;
        case 'r': rate = atof(optarg); break;
        case 'b': batch = atoi(optarg); break;
        default: usage();
        }
    }
    if (!ip || port <= 0 || port > 65535 || size < 0 || size > 65000 || seconds <= 0 || rate < 0 ||
        batch < 1 || batch > MAX_BATCH)
        usage();
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    if (inet_pton(AF_INET, ip, &dst.sin_addr) != 1) usage();
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&dst, sizeof dst) < 0) {
        perror("udp_send: socket/connect");
        return 1;
    }
    int sndbuf = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    char *payload = calloc(1, (size_t)size + 1);
    memset(payload, 'x', (size_t)size);
    static struct mmsghdr msgs[MAX_BATCH];
    static struct iovec iov[MAX_BATCH];
    for (int i = 0; i < batch; i++) {
        iov[i].iov_base = payload;
        iov[i].iov_len = (size_t)size;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    unsigned long long packets = 0, errors = 0;
    double start = now(), end = start + seconds, t = start;
    while (t < end) {
        int want = batch;
        if (rate > 0) {
            /* Paced: never ahead of rate * elapsed; sleep until the next batch is due. */
            double due = (double)packets / rate + start;
            if (due > t) {
                double wait = due - t;
                struct timespec ts = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
                nanosleep(&ts, NULL);
                t = now();
                continue;
            }
            double owed = rate * (t - start) - (double)packets;
            if (owed < want) want = owed < 1 ? 1 : (int)owed;
        }
        int sent = sendmmsg(fd, msgs, (unsigned)want, 0);
        if (sent < 0) {
            if (errno != ENOBUFS && errno != ECONNREFUSED && errno != EAGAIN && errno != EINTR) {
                perror("udp_send: sendmmsg");
                return 1;
            }
            errors++;
        } else {
            packets += (unsigned long long)sent;
        }
        t = now();
    }
    double elapsed = now() - start;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"packets\": %llu, \"bytes\": %llu, \"seconds\": %.6f, \"errors\": %llu, "
           "\"cpu_user_s\": %.6f, \"cpu_sys_s\": %.6f}\n",
           packets, packets * (unsigned long long)size, elapsed, errors,
           (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6,
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6);
    return 0;
}
