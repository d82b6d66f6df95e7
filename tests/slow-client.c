/* The slow client of tests/e2e/connections.sh: opens many connections to
 * the daemon from one loopback address and keeps each one "almost sending a
 * request" (slowloris). By default it sends the request line and a Host
 * line at once, then one more header line every INTERVAL milliseconds,
 * never the blank line that ends the headers; with -l it sends the request
 * line itself one byte per INTERVAL. After DURATION milliseconds it closes
 * every socket and reports what it saw. Bounded in count and time,
 * loopback only.
 *
 *   slow-client [-l] [-s SOURCE_ADDRESS] ADDRESS PORT COUNT DURATION_MS INTERVAL_MS
 *
 * Prints one line: "opened N, refused R, closed_by_server C" where refused
 * counts connections that failed at once, and closed_by_server those the
 * daemon closed while we trickled. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <getopt.h>
#include <unistd.h>

#define MAX_CONNECTIONS 4096

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* false when the daemon has closed or reset the connection */
static bool send_all(int fd, const char *text)
{
    size_t len = strlen(text), done = 0;
    while (done < len) {
        ssize_t n = send(fd, text + done, len - done, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true; /* the daemon reads slowly: that is fine here */
        if (n <= 0)
            return false;
        done += (size_t)n;
    }
    return true;
}

/* true when the daemon has closed its side (EOF or reset) */
static bool closed_by_peer(int fd)
{
    char buf[512];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n == 0)
            return true;
        if (n < 0)
            return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
        /* an answer (408, 429, 503): read on until the close */
    }
}

int main(int argc, char **argv)
{
    const char *source = NULL;
    bool request_line = false;
    int opt;
    while ((opt = getopt(argc, argv, "ls:")) != -1) {
        if (opt == 'l')
            request_line = true;
        else if (opt == 's')
            source = optarg;
        else
            return 2;
    }
    if (argc - optind != 5) {
        fprintf(stderr,
                "usage: %s [-l] [-s SOURCE_ADDRESS] ADDRESS PORT COUNT DURATION_MS "
                "INTERVAL_MS\n",
                argv[0]);
        return 2;
    }
    argv += optind;
    const char *address = argv[0];
    int port = atoi(argv[1]), count = atoi(argv[2]);
    long long duration = atoll(argv[3]), interval = atoll(argv[4]);
    if (port <= 0 || port > 65535 || count <= 0 || count > MAX_CONNECTIONS || duration <= 0 ||
        interval <= 0) {
        fprintf(stderr, "slow-client: bad arguments\n");
        return 2;
    }
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct sockaddr_in from = {.sin_family = AF_INET};
    if (inet_pton(AF_INET, address, &to.sin_addr) != 1 ||
        (ntohl(to.sin_addr.s_addr) >> 24) != 127 ||
        (source != NULL && (inet_pton(AF_INET, source, &from.sin_addr) != 1 ||
                            (ntohl(from.sin_addr.s_addr) >> 24) != 127))) {
        fprintf(stderr, "slow-client: loopback addresses only\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);

    static int fds[MAX_CONNECTIONS];
    int opened = 0, refused = 0, closed = 0;
    long long start = now_ms();
    for (int i = 0; i < count; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            perror("socket");
            break;
        }
        if (source != NULL && bind(fd, (struct sockaddr *)&from, sizeof(from)) != 0) {
            perror("bind");
            close(fd);
            break;
        }
        if (connect(fd, (struct sockaddr *)&to, sizeof(to)) != 0) {
            refused++;
            close(fd);
            fds[i] = -1;
            continue;
        }
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        char head[128];
        snprintf(head, sizeof(head), "POST /oauth2/token HTTP/1.1\r\nHost: %s\r\n", address);
        if (request_line)
            head[1] = '\0'; /* "P" now, the rest a byte at a time */
        if (!send_all(fd, head)) {
            refused++;
            close(fd);
            fds[i] = -1;
            continue;
        }
        fds[i] = fd;
        opened++;
    }
    int total = opened + refused;
    for (int round = 0; now_ms() - start < duration; round++) {
        long long wake = start + (long long)(round + 1) * interval;
        long long end = start + duration;
        long long wait = (wake < end ? wake : end) - now_ms();
        if (wait > 0)
            poll(NULL, 0, (int)wait);
        for (int i = 0; i < total; i++) {
            if (fds[i] < 0)
                continue;
            char line[64];
            if (request_line) /* "POST /oauth2/token..." a letter at a time */
                snprintf(line, sizeof(line), "%c", "OST /oauth2/token"[round % 17]);
            else
                snprintf(line, sizeof(line), "X-Slow-%d: %d\r\n", round, i);
            if (closed_by_peer(fds[i]) || !send_all(fds[i], line)) {
                close(fds[i]);
                fds[i] = -1;
                closed++;
            }
        }
    }
    for (int i = 0; i < total; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    printf("opened %d, refused %d, closed_by_server %d\n", opened, refused, closed);
    return 0;
}
