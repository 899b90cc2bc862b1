// udpflood: UDP packet-rate generator and sink for the same-host benchmark (bench/run).
//
// iperf3 sends and receives one datagram per system call and its receiver drains the socket with a
// select() wakeup per datagram, so with 64-byte packets it measures iperf3 (its receiver overflows
// the socket buffer long before the datapath is saturated). udpflood batches 64 datagrams per
// sendmmsg()/recvmmsg() call, so the per-packet cost left is the kernel's: the UDP/IP stack and the
// datapath between the two namespaces, which runs in the sender's softirq context on veths.
//
//   udpflood send DST_IP PORT SECONDS [SIZE]   sends SIZE-byte datagrams (default 64) for SECONDS
//   udpflood recv BIND_IP PORT [TIMEOUT_S]     counts datagrams from the first one until none has
//                                              arrived for 300 ms (or TIMEOUT_S without any: error)
//
// Each prints one JSON object on stdout. Build: cc -O2 -o udpflood udpflood.c
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { BATCH = 64, MAX_SIZE = 1472, IDLE_MS = 300 };

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int usage(void) {
    fprintf(stderr, "usage: udpflood send DST_IP PORT SECONDS [SIZE] | udpflood recv BIND_IP PORT [TIMEOUT_S]\n");
    return 2;
}

static int parse_addr(const char *ip, const char *port, struct sockaddr_in *sa) {
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)atoi(port));
    if (inet_pton(AF_INET, ip, &sa->sin_addr) != 1) {
        fprintf(stderr, "udpflood: bad IPv4 address %s\n", ip);
        return -1;
    }
    return 0;
}

static int do_send(const struct sockaddr_in *dst, double seconds, int size) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0 || connect(fd, (const struct sockaddr *)dst, sizeof(*dst)) < 0) {
        perror("udpflood: socket/connect");
        return 1;
    }
    static char payload[MAX_SIZE];
    memset(payload, 'b', sizeof(payload));
    struct iovec iov = {.iov_base = payload, .iov_len = (size_t)size};
    struct mmsghdr msgs[BATCH];
    memset(msgs, 0, sizeof(msgs));
    for (int i = 0; i < BATCH; i++) {
        msgs[i].msg_hdr.msg_iov = &iov;
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    uint64_t sent = 0, errors = 0;
    double start = now(), end = start + seconds, t = start;
    while (t < end) {
        int n = sendmmsg(fd, msgs, BATCH, 0);
        if (n > 0) {
            sent += (uint64_t)n;
        } else if (errno == ENOBUFS || errno == EAGAIN || errno == ECONNREFUSED || errno == EINTR) {
            errors++;  // ECONNREFUSED: an ICMP port unreachable came back (sink not there yet or gone)
        } else {
            perror("udpflood: sendmmsg");
            return 1;
        }
        t = now();
    }
    printf("{\"sent\": %llu, \"seconds\": %.6f, \"errors\": %llu, \"size\": %d}\n", (unsigned long long)sent,
           t - start, (unsigned long long)errors, size);
    return 0;
}

static int do_recv(const struct sockaddr_in *bind_to, double timeout) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    int rcvbuf = 32 << 20, one = 1;
    if (fd < 0) {
        perror("udpflood: socket");
        return 1;
    }
    // A deep queue absorbs scheduling hiccups of the sink; SO_RCVBUFFORCE needs CAP_NET_ADMIN.
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof(one));
    if (bind(fd, (const struct sockaddr *)bind_to, sizeof(*bind_to)) < 0) {
        perror("udpflood: bind");
        return 1;
    }
    static char bufs[BATCH][MAX_SIZE + 1];
    static char ctrl[BATCH][CMSG_SPACE(sizeof(uint32_t))];
    struct iovec iovs[BATCH];
    struct mmsghdr msgs[BATCH];
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (poll(&pfd, 1, (int)(timeout * 1000)) <= 0) {
        fprintf(stderr, "udpflood: no datagram within %.0f s\n", timeout);
        return 1;
    }
    uint64_t received = 0, bytes = 0;
    uint32_t drops = 0;  // SO_RXQ_OVFL: datagrams dropped because the socket queue was full
    double first = 0, last = 0;
    for (;;) {
        for (int i = 0; i < BATCH; i++) {
            iovs[i].iov_base = bufs[i];
            iovs[i].iov_len = sizeof(bufs[i]);
            memset(&msgs[i], 0, sizeof(msgs[i]));
            msgs[i].msg_hdr.msg_iov = &iovs[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
            msgs[i].msg_hdr.msg_control = ctrl[i];
            msgs[i].msg_hdr.msg_controllen = sizeof(ctrl[i]);
        }
        int n = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL);
        if (n < 0) {
            if (errno != EAGAIN && errno != EINTR) {
                perror("udpflood: recvmmsg");
                return 1;
            }
            if (poll(&pfd, 1, IDLE_MS) == 0) break;  // the sender has stopped
            continue;
        }
        double t = now();
        if (received == 0) first = t;
        last = t;
        received += (uint64_t)n;
        for (int i = 0; i < n; i++) {
            bytes += msgs[i].msg_len;
            for (struct cmsghdr *c = CMSG_FIRSTHDR(&msgs[i].msg_hdr); c; c = CMSG_NXTHDR(&msgs[i].msg_hdr, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL)
                    memcpy(&drops, CMSG_DATA(c), sizeof(drops));
        }
    }
    printf("{\"received\": %llu, \"bytes\": %llu, \"seconds\": %.6f, \"socket_drops\": %u}\n",
           (unsigned long long)received, (unsigned long long)bytes, last - first, drops);
    return 0;
}

int main(int argc, char **argv) {
    struct sockaddr_in sa;
    if (argc >= 5 && strcmp(argv[1], "send") == 0) {
        int size = argc > 5 ? atoi(argv[5]) : 64;
        if (size < 1 || size > MAX_SIZE || parse_addr(argv[2], argv[3], &sa) < 0) return usage();
        return do_send(&sa, atof(argv[4]), size);
    }
    if (argc >= 4 && strcmp(argv[1], "recv") == 0) {
        if (parse_addr(argv[2], argv[3], &sa) < 0) return usage();
        return do_recv(&sa, argc > 4 ? atof(argv[4]) : 30.0);
    }
    return usage();
}
