/*
** fuzz_url.c: libFuzzer target for azb_url_parse, the one URL rule (what is
** checked is what is signed and sent). Invariants: no crash; on success the
** scheme is https, or http to loopback; there are a host, a port and a path
** starting with '/'; the origin and "where" texts are built without overflow.
*/
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "azb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what) {
  if (!ok) {
    fprintf(stderr, "invariant violated: %s\n", what);
    abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char url[4096], why[320], origin[AZB_URL_TEXT], where[AZB_URL_TEXT];
  azb_url u;
  if (size >= sizeof url)
    return 0;
  memcpy(url, data, size);
  url[size] = '\0';
  if (azb_url_parse(url, (size & 1) ? AZB_URL_IMDS : 0, &u, why, sizeof why) != NULL) {
    check(why[0] != '\0', "a refusal says why");
    return 0;
  }
  check(strcmp(u.scheme, "https") == 0 || (strcmp(u.scheme, "http") == 0 && (u.loopback || u.imds)),
        "scheme rule");
  check(u.host != NULL && u.port != NULL && u.path != NULL && u.path[0] == '/', "parts");
  azb_url_origin(&u, origin, sizeof origin);
  azb_url_where(&u, where, sizeof where);
  check(strstr(origin, "://") != NULL, "origin");
  azb_url_free(&u);
  return 0;
}
