/*
** curl_loop.c: the baseline for the benchmark. A plain C program doing N
** Shared Key signed GETs over one keep-alive libcurl handle, signing each
** request (HMAC-SHA256) as azbatch does. Prints the CPU seconds it used.
**
** With "same" it sends the request azbatch sends, byte for byte but for
** the values that change: the headers design.md asks for (a fresh
** client-request-id, return-client-request-id, Accept), the User-Agent
** azbatch 0.1.0 sends, and gzip offered. Without it, only ocp-date and
** Authorization (libcurl adds Host and an Accept of any type).
**
** usage: curl_loop BASE_URL ACCOUNT KEY_BASE64 PATH N [same]
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

static size_t discard(char *p, size_t size, size_t n, void *ud) {
  (void)p; (void)ud;
  return size * n;
}

static double cpu_seconds(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6
       + (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

int main(int argc, char **argv) {
  unsigned char key[128], mac[EVP_MAX_MD_SIZE];
  char url[1024], date[64], sts[1024], auth[256], hdate[128], sig[128];
  unsigned int maclen;
  int keylen, n, failures = 0;
  CURL *curl;
  int same = argc == 7 && strcmp(argv[6], "same") == 0;
  if (argc != 6 && !same) {
    fprintf(stderr, "usage: curl_loop BASE_URL ACCOUNT KEY_BASE64 PATH N [same]\n");
    return 2;
  }
  keylen = EVP_DecodeBlock(key, (const unsigned char *)argv[3], (int)strlen(argv[3]));
  if (keylen <= 0) return 2;
  keylen -= (argv[3][strlen(argv[3]) - 1] == '=') + (argv[3][strlen(argv[3]) - 2] == '=');
  n = atoi(argv[5]);
  snprintf(url, sizeof url, "%s%s?api-version=2025-06-01", argv[1], argv[4]);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  curl = curl_easy_init();
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
  if (same) {
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "azbatch/0.1.0 Lua/5.4 libcurl/7.88.1");
    curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "gzip");
  }
  double start = cpu_seconds();
  for (int i = 0; i < n; i++) {
    struct curl_slist *h = NULL;
    long status = 0;
    time_t now = time(NULL);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", gmtime(&now));
    snprintf(sts, sizeof sts, "GET\n\n\n\n\n\n\n\n\n\n\n\nocp-date:%s\n/%s%s\napi-version:2025-06-01",
             date, argv[2], argv[4]);
    HMAC(EVP_sha256(), key, keylen, (unsigned char *)sts, strlen(sts), mac, &maclen);
    EVP_EncodeBlock((unsigned char *)sig, mac, (int)maclen);
    snprintf(hdate, sizeof hdate, "ocp-date: %s", date);
    snprintf(auth, sizeof auth, "Authorization: SharedKey %s:%s", argv[2], sig);
    if (same) {
      unsigned char u[16];
      char crid[80];
      RAND_bytes(u, sizeof u);
      u[6] = (unsigned char)((u[6] & 0x0F) | 0x40);
      u[8] = (unsigned char)((u[8] & 0x3F) | 0x80);
      snprintf(crid, sizeof crid, "client-request-id: %02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
               "%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8],
               u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
      h = curl_slist_append(h, "Accept: application/json");
      h = curl_slist_append(h, crid);
    }
    h = curl_slist_append(h, hdate);
    if (same)
      h = curl_slist_append(h, "return-client-request-id: true");
    h = curl_slist_append(h, auth);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
    if (curl_easy_perform(curl) != CURLE_OK) failures++;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) failures++;
    curl_slist_free_all(h);
  }
  double used = cpu_seconds() - start;
  curl_easy_cleanup(curl);
  curl_global_cleanup();
  printf("%.6f %d\n", used, failures);
  return failures ? 1 : 0;
}
