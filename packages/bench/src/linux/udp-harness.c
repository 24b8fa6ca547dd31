/*
 * The Linux side of `exonet bench e2e`: 64-byte UDP datagrams from one sender process to N receivers on
 * loopback, received either through N UDP sockets (epoll + recvmmsg) or through N AF_PACKET sockets, each with
 * its own classic BPF filter for one port compiled by libpcap and attached with SO_ATTACH_FILTER (the seed's
 * design as today's Linux offers it). Prints one JSON line: {"mode","receivers","sent","received","seconds","pps"}.
 *
 * usage: udp-harness udp|af_packet RECEIVERS SECONDS BASEPORT
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pcap/pcap.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define PAYLOAD 18 /* 14 + 20 + 8 + 18 = 60 bytes: a 64-byte frame on the wire with its FCS, as on the exonet side */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* CPU seconds (user + system) this process used so far. */
static double cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void die(const char *what) {
  fprintf(stderr, "udp-harness: %s: %s\n", what, strerror(errno));
  exit(2);
}

static void raise_fd_limit(int need) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)need) {
    rl.rlim_cur = rl.rlim_max < (rlim_t)need ? rl.rlim_max : (rlim_t)need;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

/* One UDP socket bound to 127.0.0.1:port. The AF_PACKET mode binds them too (never read) so the kernel does
 * not answer every datagram with an ICMP port unreachable, which would measure ICMP rather than delivery. */
static int udp_socket(int port, int rcvbuf) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  if (fd < 0) die("socket(AF_INET)");
  if (rcvbuf > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) die("bind(udp)");
  return fd;
}

static int packet_socket(int port) {
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, htons(ETH_P_ALL));
  if (fd < 0) die("socket(AF_PACKET)");
  int one = 1;
  /* lo hands every frame to packet sockets twice (outgoing and incoming); count only the incoming copy. With
   * PACKET_IGNORE_OUTGOING (Linux >= 4.20) the kernel does not even queue the outgoing one; the receiver also
   * checks sll_pkttype of everything it reads, so an older kernel cannot make it count a datagram twice. */
  setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one);
  char expr[64];
  snprintf(expr, sizeof expr, "udp dst port %d", port);
  pcap_t *dead = pcap_open_dead(DLT_EN10MB, 262144);
  struct bpf_program prog;
  if (pcap_compile(dead, &prog, expr, 1, PCAP_NETMASK_UNKNOWN) != 0) {
    fprintf(stderr, "udp-harness: pcap_compile: %s\n", pcap_geterr(dead));
    exit(2);
  }
  struct sock_fprog fprog = {.len = (unsigned short)prog.bf_len, .filter = (struct sock_filter *)prog.bf_insns};
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &fprog, sizeof fprog) < 0) die("SO_ATTACH_FILTER");
  pcap_freecode(&prog);
  pcap_close(dead);
  struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL), .sll_ifindex = (int)if_nametoindex("lo")};
  if (bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0) die("bind(AF_PACKET)");
  return fd;
}

/* Sends round-robin over the N ports with sendmmsg until *stop; returns the number sent. Records its CPU time
 * when the receiver starts counting (*counting) and when it stops, so only the measured window is charged. */
static uint64_t sender(int n, int baseport, volatile int *stop, volatile int *counting, volatile double *cpu) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) die("socket(sender)");
  static struct sockaddr_in dst[BATCH];
  static struct mmsghdr msgs[BATCH];
  static struct iovec iov[BATCH];
  static char payload[PAYLOAD];
  memset(payload, 0xab, sizeof payload);
  uint64_t sent = 0;
  int next = 0;
  int seen = 0;
  while (!*stop) {
    if (!seen && *counting) {
      seen = 1;
      cpu[0] = cpu_s();
    }
    for (int i = 0; i < BATCH; i++) {
      dst[i] = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(baseport + next), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
      next = next + 1 == n ? 0 : next + 1;
      iov[i] = (struct iovec){.iov_base = payload, .iov_len = PAYLOAD};
      msgs[i].msg_hdr = (struct msghdr){.msg_name = &dst[i], .msg_namelen = sizeof dst[i], .msg_iov = &iov[i], .msg_iovlen = 1};
    }
    int r = sendmmsg(fd, msgs, BATCH, 0);
    if (r > 0) sent += (uint64_t)r;
  }
  cpu[1] = cpu_s();
  if (!seen) cpu[0] = cpu[1];
  return sent;
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: udp-harness udp|af_packet RECEIVERS SECONDS BASEPORT\n");
    return 2;
  }
  int packet_mode = strcmp(argv[1], "af_packet") == 0;
  if (!packet_mode && strcmp(argv[1], "udp") != 0) {
    fprintf(stderr, "udp-harness: mode must be udp or af_packet, got %s\n", argv[1]);
    return 2;
  }
  int n = atoi(argv[2]);
  double seconds = atof(argv[3]);
  int baseport = atoi(argv[4]);
  if (n < 1 || n > 20000 || seconds <= 0 || baseport < 1024 || baseport + n > 65535) {
    fprintf(stderr, "udp-harness: bad arguments\n");
    return 2;
  }
  raise_fd_limit(2 * n + 64);

  int *udp = calloc((size_t)n, sizeof *udp);
  int *pkt = packet_mode ? calloc((size_t)n, sizeof *pkt) : NULL;
  for (int i = 0; i < n; i++) udp[i] = udp_socket(baseport + i, packet_mode ? 4096 : 0);
  for (int i = 0; packet_mode && i < n; i++) pkt[i] = packet_socket(baseport + i);
  int *rx = packet_mode ? pkt : udp;

  int ep = epoll_create1(0);
  for (int i = 0; i < n; i++) {
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, rx[i], &ev) < 0) die("epoll_ctl");
  }

  /* The sender is a separate process, as in the issue; a shared flag stops it. */
  volatile int *stop = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  uint64_t *sent_out = (uint64_t *)(stop + 16);
  volatile int *counting_flag = stop + 32;
  volatile double *sender_cpu = (volatile double *)(stop + 64);
  *stop = 0;
  *counting_flag = 0;
  pid_t child = fork();
  if (child == 0) {
    *sent_out = sender(n, baseport, stop, counting_flag, sender_cpu);
    _exit(0);
  }

  static struct mmsghdr msgs[BATCH];
  static struct iovec iov[BATCH];
  static char bufs[BATCH][2048];
  static struct sockaddr_ll from[BATCH];
  for (int i = 0; i < BATCH; i++) {
    iov[i] = (struct iovec){.iov_base = bufs[i], .iov_len = sizeof bufs[i]};
    msgs[i].msg_hdr = (struct msghdr){.msg_iov = &iov[i], .msg_iovlen = 1};
  }
  struct epoll_event events[256];
  uint64_t received = 0;
  double warm = now_s() + 0.1, start = 0, end = 0;
  int counting = 0;
  double rx_cpu0 = 0, rx_cpu1 = 0;
  for (;;) {
    double t = now_s();
    if (!counting && t >= warm) {
      counting = 1;
      *counting_flag = 1;
      received = 0;
      start = t;
      rx_cpu0 = cpu_s();
    }
    if (counting && t - start >= seconds) {
      end = t;
      rx_cpu1 = cpu_s();
      break;
    }
    int ne = epoll_wait(ep, events, 256, 10);
    for (int e = 0; e < ne; e++) {
      int fd = rx[events[e].data.u32];
      int r;
      if (!packet_mode) {
        while ((r = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL)) > 0) received += (uint64_t)r;
        continue;
      }
      for (;;) {
        for (int i = 0; i < BATCH; i++) {
          msgs[i].msg_hdr.msg_name = &from[i];
          msgs[i].msg_hdr.msg_namelen = sizeof from[i];
        }
        if ((r = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL)) <= 0) break;
        for (int i = 0; i < r; i++) received += from[i].sll_pkttype != PACKET_OUTGOING;
      }
    }
  }
  *stop = 1;
  waitpid(child, NULL, 0);
  /* CPU of both processes in the window (softirq work of loopback is charged to whichever of them ran it). */
  double cpu = (rx_cpu1 - rx_cpu0) + (sender_cpu[1] - sender_cpu[0]);
  printf("{\"mode\":\"%s\",\"receivers\":%d,\"sent\":%llu,\"received\":%llu,\"seconds\":%.6f,\"pps\":%.1f,"
         "\"cpuSeconds\":%.6f}\n",
         argv[1], n, (unsigned long long)*sent_out, (unsigned long long)received, end - start,
         received / (end - start), cpu);
  return 0;
}
