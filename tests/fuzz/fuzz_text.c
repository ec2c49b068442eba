/*
** fuzz_text.c: libFuzzer target for azb_text_clean, what every string from
** the network goes through before a message or a terminal. Invariants: the
** output fits 'max' (chosen from the input), is well-formed UTF-8, holds no
** C0 control byte, DEL, C1 control or bidirectional override, and cleaning
** it again changes nothing unless it was cut.
*/
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "azb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what) {
  if (!ok) {
    fprintf(stderr, "invariant violated: %s\n", what);
    abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char out[2048], again[2048];
  size_t max, n, m, i;
  if (size < 1)
    return 0;
  max = 4 + data[0] % 600;
  n = azb_text_clean((const char *)data + 1, size - 1, out, max);
  check(n <= max && n <= (size - 1 > max ? max : size - 1 + 3), "length");
  check(azb_utf8_valid(out, n), "UTF-8");
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)out[i];
    check(c >= 0x20 && c != 0x7F, "control byte");
    check(!(c == 0xC2 && i + 1 < n && (unsigned char)out[i + 1] >= 0x80 &&
            (unsigned char)out[i + 1] <= 0x9F), "C1 control");
    check(!(c == 0xE2 && i + 2 < n && (unsigned char)out[i + 1] == 0x80 &&
            (unsigned char)out[i + 2] >= 0xAA && (unsigned char)out[i + 2] <= 0xAE), "bidi override");
    check(!(c == 0xE2 && i + 2 < n && (unsigned char)out[i + 1] == 0x81 &&
            (unsigned char)out[i + 2] >= 0xA6 && (unsigned char)out[i + 2] <= 0xA9), "bidi isolate");
  }
  m = azb_text_clean(out, n, again, max);
  check(m == n && memcmp(out, again, n) == 0, "cleaning twice");
  return 0;
}
