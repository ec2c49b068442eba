/*
** fuzz_duration.c: libFuzzer target for azb_duration_parse and
** azb_duration_format (ext/azb_duration.c).
** Invariants: parsed values lie in [0, 10000 days]; formatting always
** yields a duration that parses; whole seconds survive format + parse
** exactly, fractions to within the nanosecond formatting keeps.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "azb.h"

#define MAX_SECONDS 864000000.0

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what) {
  if (!ok) {
    fprintf(stderr, "invariant violated: %s\n", what);
    abort();
  }
}

/* Format x, parse it back, compare. */
static void round_trip(double x) {
  char buf[48];
  double back = -1;
  const char *why;
  memset(buf, 'z', sizeof buf);
  azb_duration_format(x, buf, sizeof buf);
  check(memchr(buf, '\0', sizeof buf) != NULL, "formatted text is terminated");
  why = azb_duration_parse(buf, strlen(buf), &back);
  if (!(x >= 0 && x <= MAX_SECONDS)) {
    check(why == NULL || back <= MAX_SECONDS, "out-of-range values format as something sane");
    return;
  }
  check(why == NULL, "a formatted duration parses");
  if (x == (double)(uint64_t)x)
    check(back == x, "whole seconds round-trip exactly");
  else {
    double d = back > x ? back - x : x - back;
    check(d <= 1e-9 + x * 4e-16, "fractions round-trip to the nanosecond");
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *s = malloc(size ? size : 1);   /* exact size: ASan sees over-reads */
  double seconds = -1;
  const char *why;
  if (s == NULL)
    return 0;
  memcpy(s, data, size);
  why = azb_duration_parse(s, size, &seconds);
  if (why == NULL) {
    check(seconds >= 0 && seconds <= MAX_SECONDS, "parsed value in [0, 10000 days]");
    check(size > 1 && (s[0] == 'P' || s[0] == 'p'), "a duration starts with P");
    round_trip(seconds);
  }
  else {
    check(why[0] != '\0', "a message says why");
    check(seconds == 0, "a failure leaves 0");
  }
  /* the bytes as a double: format must cope with anything */
  if (size >= sizeof(double)) {
    double x;
    memcpy(&x, data, sizeof x);
    round_trip(x);
  }
  free(s);
  return 0;
}
