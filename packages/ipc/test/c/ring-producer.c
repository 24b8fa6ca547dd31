// A producer written only from docs/ipc-layout.md: it joins a free-standing ring in POSIX shared memory and
// sends `count` descriptors {seq, mix(seq), batch, seq ^ mix(seq) ^ 0xa5a5a5a5}, in batches, sleeping on the
// producer bell when the ring is full and ringing the consumer bell only when the consumer asked.
// Build: cc -O2 -std=c11 -o ring-producer ring-producer.c   Run: ring-producer /name capacity count
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

// Ring header offsets (docs/ipc-layout.md, "Ring header").
enum { MAGIC = 0, VERSION = 4, SLOT_SIZE = 6, CAPACITY = 8, PRODUCER = 64, CONSUMER = 128,
       CONSUMER_WAITING = 192, CONSUMER_BELL = 196, PRODUCER_WAITING = 224, PRODUCER_BELL = 228, HEADER = 256 };

static _Atomic uint32_t *word(uint8_t *ring, size_t off) { return (_Atomic uint32_t *)(ring + off); }

static uint32_t mix(uint32_t seq) {
  uint32_t h = (seq ^ 0x9e3779b9u) * 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  return h ^ (h >> 16);
}

static void futex_wait(_Atomic uint32_t *w, uint32_t expected) {
  syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT, expected, NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *w) { syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE, INT_MAX, NULL, NULL, 0); }

int main(int argc, char **argv) {
  if (argc != 4) return 2;
  uint32_t capacity = (uint32_t)strtoul(argv[2], NULL, 10);
  uint32_t count = (uint32_t)strtoul(argv[3], NULL, 10);
  int fd = shm_open(argv[1], O_RDWR, 0);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) return 3;
  uint8_t *ring = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (ring == MAP_FAILED) return 3;
  // Join: check the header against what we expect; our capacity is the one we trust from now on.
  if (atomic_load(word(ring, MAGIC)) != 0x474e4952u || *(uint16_t *)(ring + VERSION) != 1 ||
      *(uint16_t *)(ring + SLOT_SIZE) != 16 || *(uint32_t *)(ring + CAPACITY) != capacity)
    return 4;
  uint32_t mask = capacity - 1;
  uint32_t *slots = (uint32_t *)(ring + HEADER);
  uint32_t tail = atomic_load(word(ring, PRODUCER));
  uint32_t cached_head = atomic_load(word(ring, CONSUMER));
  uint32_t seq = 0, batch = 1;
  while (seq < count) {
    uint32_t n = batch;
    if (n > count - seq) n = count - seq;
    // Free slots from the cached consumer index; re-read it only when the cache says too few.
    if (capacity - (tail - cached_head) < n) cached_head = atomic_load(word(ring, CONSUMER));
    uint32_t free_slots = capacity - (tail - cached_head);
    if (free_slots == 0) {
      // Waiter's half of the wake-up protocol: bell snapshot, arm, re-check, sleep while the bell is unchanged.
      uint32_t bell = atomic_load(word(ring, PRODUCER_BELL));
      atomic_store(word(ring, PRODUCER_WAITING), 1);
      cached_head = atomic_load(word(ring, CONSUMER));
      if (capacity - (tail - cached_head) == 0) futex_wait(word(ring, PRODUCER_BELL), bell);
      atomic_store(word(ring, PRODUCER_WAITING), 0);
      continue;
    }
    if (n > free_slots) n = free_slots;
    for (uint32_t i = 0; i < n; i++, seq++, tail++) {
      uint32_t *d = slots + (tail & mask) * 4;
      uint32_t m = mix(seq);
      d[0] = seq;
      d[1] = m;
      d[2] = n;
      d[3] = seq ^ m ^ 0xa5a5a5a5u;
    }
    // One publish per batch, then the waker's half: wake the consumer only if it asked.
    atomic_store(word(ring, PRODUCER), tail);
    if (atomic_load(word(ring, CONSUMER_WAITING)) != 0) {
      atomic_store(word(ring, CONSUMER_WAITING), 0);
      atomic_fetch_add(word(ring, CONSUMER_BELL), 1);
      futex_wake(word(ring, CONSUMER_BELL));
    }
    batch = batch % 61 + 1;
  }
  munmap(ring, (size_t)st.st_size);
  close(fd);
  return 0;
}
