/*
 * Reference oracle for the exonet BPF tests and benchmark: drives libpcap's own pcap_compile,
 * bpf_validate, bpf_filter and bpf_image over a line protocol on stdin/stdout.
 *
 *   L <dlt>                                the link type later C commands compile for (default DLT_EN10MB)
 *   C <optimize 0|1> <snaplen> <expr...>   compile for the link type; "OK n" + n lines "code jt jf k", or "ERR msg"
 *   P <n> <code jt jf k>*n                 set the current program; prints "OK"
 *   V                                      bpf_validate the current program; prints 1 or 0
 *   I                                      bpf_image of each instruction, one a line, then "END"
 *   Q <wirelen> <hex|->                    queue a packet (captured bytes in hex, "-" for none); prints "OK"
 *   Z                                      forget the queued packets; prints "OK"
 *   R                                      run the current program on every queued packet; one line of values
 *   B <rounds>                             time bpf_filter over the queued packets; prints ns per packet
 *
 * The caller only sends R and B for programs bpf_validate accepts and that contain no opcode bpf_filter
 * aborts on.
 */
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_LINE (1 << 20)

static struct bpf_insn prog[8192];
static int prog_len = 0;

struct packet { unsigned char *data; unsigned int caplen; unsigned int wirelen; };
static struct packet *packets = NULL;
static size_t npackets = 0, cap_packets = 0;

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static volatile unsigned int sink;

int main(void) {
  static char line[MAX_LINE];
  int dlt = DLT_EN10MB;
  pcap_t *dead = pcap_open_dead(DLT_EN10MB, 262144);
  setvbuf(stdout, NULL, _IOFBF, 1 << 16);
  while (fgets(line, sizeof line, stdin)) {
    size_t len = strlen(line);
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
    if (line[0] == 'C') {
      int optimize = 0, snaplen = 0, used = 0;
      if (sscanf(line + 1, " %d %d %n", &optimize, &snaplen, &used) < 2) { puts("ERR bad C"); fflush(stdout); continue; }
      pcap_t *p = pcap_open_dead(dlt, snaplen);
      struct bpf_program fp;
      if (pcap_compile(p, &fp, line + 1 + used, optimize, PCAP_NETMASK_UNKNOWN) != 0) {
        printf("ERR %s\n", pcap_geterr(p));
      } else {
        printf("OK %u\n", fp.bf_len);
        for (unsigned i = 0; i < fp.bf_len; i++)
          printf("%u %u %u %u\n", fp.bf_insns[i].code, fp.bf_insns[i].jt, fp.bf_insns[i].jf, fp.bf_insns[i].k);
        pcap_freecode(&fp);
      }
      pcap_close(p);
    } else if (line[0] == 'L') {
      dlt = (int)strtol(line + 1, NULL, 10);
      puts("OK");
    } else if (line[0] == 'P') {
      char *s = line + 1;
      long n = strtol(s, &s, 10);
      if (n < 0 || n > 8192) n = 0;
      for (long i = 0; i < n; i++) {
        prog[i].code = (unsigned short)strtoul(s, &s, 10);
        prog[i].jt = (unsigned char)strtoul(s, &s, 10);
        prog[i].jf = (unsigned char)strtoul(s, &s, 10);
        prog[i].k = (unsigned int)strtoul(s, &s, 10);
      }
      prog_len = (int)n;
      puts("OK");
    } else if (line[0] == 'V') {
      printf("%d\n", bpf_validate(prog, prog_len));
    } else if (line[0] == 'I') {
      for (int i = 0; i < prog_len; i++) puts(bpf_image(&prog[i], i));
      puts("END");
    } else if (line[0] == 'Q') {
      char *s = line + 1;
      unsigned int wirelen = (unsigned int)strtoul(s, &s, 10);
      while (*s == ' ') s++;
      size_t hexlen = (*s == '-') ? 0 : strlen(s);
      if (npackets == cap_packets) {
        cap_packets = cap_packets ? cap_packets * 2 : 256;
        packets = realloc(packets, cap_packets * sizeof *packets);
      }
      struct packet *pk = &packets[npackets++];
      pk->caplen = (unsigned int)(hexlen / 2);
      pk->wirelen = wirelen;
      pk->data = malloc(pk->caplen ? pk->caplen : 1);
      for (unsigned i = 0; i < pk->caplen; i++) pk->data[i] = (unsigned char)(hexval(s[2 * i]) * 16 + hexval(s[2 * i + 1]));
      puts("OK");
    } else if (line[0] == 'Z') {
      for (size_t i = 0; i < npackets; i++) free(packets[i].data);
      npackets = 0;
      puts("OK");
    } else if (line[0] == 'R') {
      for (size_t i = 0; i < npackets; i++)
        printf(i ? " %u" : "%u", bpf_filter(prog, packets[i].data, packets[i].wirelen, packets[i].caplen));
      putchar('\n');
    } else if (line[0] == 'B') {
      long rounds = strtol(line + 1, NULL, 10);
      if (rounds < 1) rounds = 1;
      struct timespec t0, t1;
      unsigned int acc = 0;
      clock_gettime(CLOCK_MONOTONIC, &t0);
      for (long r = 0; r < rounds; r++)
        for (size_t i = 0; i < npackets; i++) acc += bpf_filter(prog, packets[i].data, packets[i].wirelen, packets[i].caplen);
      clock_gettime(CLOCK_MONOTONIC, &t1);
      sink = acc;
      double ns = (double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec);
      printf("%.3f\n", npackets ? ns / ((double)rounds * (double)npackets) : 0.0);
    } else {
      puts("ERR unknown command");
    }
    fflush(stdout);
  }
  pcap_close(dead);
  return 0;
}
