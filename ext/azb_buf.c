/*
** azb_buf.c: the growable byte buffer libcurl callbacks append into.
** Pure C: nothing here calls Lua or raises, so it is safe inside
** callbacks; an allocation failure is remembered in 'oom' and reported by
** whoever materialises the buffer later.
*/
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "azb.h"

/*
** {======================================================
** Buffer
** =======================================================
*/

void azb_buf_init(azb_buf *b) {
  b->p = NULL;
  b->n = b->cap = 0;
  b->oom = 0;
}

/* Make room for n more bytes plus the NUL terminator. */
static int reserve(azb_buf *b, size_t n) {
  size_t need, cap;
  char *p;
  if (b->oom)
    return -1;
  if (n >= (size_t)-1 - b->n - 1) {   /* overflow */
    b->oom = 1;
    return -1;
  }
  need = b->n + n + 1;
  if (need <= b->cap)
    return 0;
  cap = b->cap ? b->cap : 256;
  while (cap < need)
    cap = (cap > (size_t)-1 / 2) ? need : cap * 2;
  p = realloc(b->p, cap);
  if (p == NULL) {
    b->oom = 1;
    return -1;
  }
  b->p = p;
  b->cap = cap;
  return 0;
}

int azb_buf_add(azb_buf *b, const void *s, size_t n) {
  if (reserve(b, n) != 0)
    return -1;
  if (n > 0)
    memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = '\0';
  return 0;
}

int azb_buf_adds(azb_buf *b, const char *s) {
  return azb_buf_add(b, s, strlen(s));
}

int azb_buf_addc(azb_buf *b, int c) {
  char ch = (char)c;
  return azb_buf_add(b, &ch, 1);
}

void azb_buf_reset(azb_buf *b) {
  b->n = 0;
  b->oom = 0;
  if (b->p != NULL)
    b->p[0] = '\0';
}

void azb_buf_free(azb_buf *b) {
  free(b->p);
  azb_buf_init(b);
}

/* For buffers that held secrets: the whole capacity, not just n bytes. */
void azb_buf_wipe(azb_buf *b) {
  if (b->p != NULL)
    OPENSSL_cleanse(b->p, b->cap);
  azb_buf_free(b);
}

/* }====================================================== */


