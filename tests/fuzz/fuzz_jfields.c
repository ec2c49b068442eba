/*
** fuzz_jfields.c: libFuzzer target for azb_json_fields, the strict reader of
** token endpoint answers (secrets stay in C memory). Invariants: no crash,
** no leak; found strings are NUL-terminated and as long as said; a number
** field is finite.
*/
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "azb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  azb_jfield f[] = {
    { "access_token", 0, { 0 }, 0 }, { "expires_in", 0, { 0 }, 0 }, { "expires_on", 0, { 0 }, 0 },
    { "error", 0, { 0 }, 0 }, { "error_description", 0, { 0 }, 0 }, { "accessToken", 0, { 0 }, 0 }
  };
  int nf = (int)(sizeof f / sizeof f[0]);
  int rc = azb_json_fields((const char *)data, size, f, nf);
  for (int i = 0; i < nf; i++) {
    if (rc == 0 && f[i].type == AZB_JSTRING && f[i].str.p != NULL &&
        strlen(f[i].str.p) > f[i].str.n) {
      fprintf(stderr, "invariant violated: string length\n");
      abort();
    }
    if (rc == 0 && f[i].type == AZB_JNUMBER && !isfinite(f[i].num)) {
      fprintf(stderr, "invariant violated: number\n");
      abort();
    }
    azb_buf_wipe(&f[i].str);
  }
  return 0;
}
