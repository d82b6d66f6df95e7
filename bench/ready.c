/* bench/ready: the two small helpers bench/run needs to time a server's start.
 *
 *   ready --free-port
 *       prints a TCP port on 127.0.0.1 that is free now (bound to port 0,
 *       then closed), for a server that must be told its port in advance.
 *   ready PORT PATH [TIMEOUT_S]
 *       polls http://127.0.0.1:PORT/PATH (a new connection each time, one
 *       attempt every 0.5 ms while nothing listens, every 1 ms while the
 *       answer is not 200) until it answers 200; prints the wall-clock time
 *       then, in microseconds since the epoch, as bash's $EPOCHREALTIME
 *       would show it (seconds.micro). Exit 1 after TIMEOUT_S (default 120).
 *
 * bench/run reads $EPOCHREALTIME just before it starts the server in the
 * background, runs this at once, and reports the difference: a shell loop of
 * curl would add several milliseconds of process starts to every attempt.
 * Built by bench/run with the system's cc; no dependency beyond libc.
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void pause_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    socklen_t len = sizeof a;
    if (fd < 0)
        return -1;
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

/* 1: answered 200; 0: answered something else; -1: nothing listens */
static int try_once(int port, const char *path)
{
    struct sockaddr_in a = {0};
    char req[1024], resp[64];
    size_t got = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    if (fd < 0)
        return -1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n",
                     path, port);
    if (n <= 0 || (size_t)n >= sizeof req || write(fd, req, (size_t)n) != n) {
        close(fd);
        return 0;
    }
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    while (got < 12) {
        ssize_t r = read(fd, resp + got, sizeof resp - 1 - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    resp[got] = '\0';
    /* "HTTP/1.x 200" */
    return got >= 12 && strncmp(resp, "HTTP/1.", 7) == 0 && strncmp(resp + 9, "200", 3) == 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--free-port") == 0) {
        int p = free_port();
        if (p <= 0)
            return 1;
        printf("%d\n", p);
        return 0;
    }
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: ready --free-port | ready PORT PATH [TIMEOUT_S]\n");
        return 2;
    }
    int port = atoi(argv[1]);
    double timeout = argc == 4 ? atof(argv[3]) : 120.0;
    double end = now_s() + timeout;
    while (now_s() < end) {
        int r = try_once(port, argv[2]);
        if (r == 1) {
            struct timeval tv;
            gettimeofday(&tv, NULL);
            printf("%ld.%06ld\n", (long)tv.tv_sec, (long)tv.tv_usec);
            return 0;
        }
        pause_us(r < 0 ? 500 : 1000);
    }
    fprintf(stderr, "ready: http://127.0.0.1:%d%s did not answer 200 within %.0f s\n", port,
            argv[2], timeout);
    return 1;
}
