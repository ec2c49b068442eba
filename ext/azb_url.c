/*
** azb_url.c: the one URL rule. libcurl's own parser decides scheme, host,
** port, path and query, once; the parsed handle is what the transport
** hands to libcurl (CURLOPT_CURLU) and what Shared Key signs, so what is
** checked, signed and sent cannot differ. https everywhere; http only to
** loopback (the emulator) and, for managed identity, the metadata address.
*/
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "azb.h"

#define IMDS_HOST "169.254.169.254"

/* 127.0.0.0/8 as a strict dotted quad (libcurl normalises other forms). */
static int ipv4_loopback(const char *h) {
  int parts = 0, first = -1;
  while (*h) {
    int v = 0, digits = 0;
    while (*h >= '0' && *h <= '9' && digits < 4) {
      v = v * 10 + (*h++ - '0');
      digits++;
    }
    if (digits == 0 || digits > 3 || v > 255)
      return 0;
    if (parts == 0)
      first = v;
    parts++;
    if (*h == '.')
      h++;
    else if (*h != '\0')
      return 0;
  }
  return parts == 4 && first == 127;
}

int azb_url_is_loopback(const char *host) {
  return azb_strieq(host, "localhost") || azb_strieq(host, "[::1]") ||
         ipv4_loopback(host);
}

void azb_url_free(azb_url *u) {
  curl_free(u->scheme);
  curl_free(u->host);
  curl_free(u->port);
  curl_free(u->path);
  curl_free(u->query);
  if (u->curlu != NULL)
    curl_url_cleanup((CURLU *)u->curlu);
  memset(u, 0, sizeof *u);
}

const char *azb_url_parse(const char *url, int flags, azb_url *u,
                          char *why, size_t whysz) {
  CURLU *h;
  CURLUcode rc;
  char *user = NULL;
  memset(u, 0, sizeof *u);
  why[0] = '\0';
  if ((h = curl_url()) == NULL) {
    snprintf(why, whysz, "out of memory");
    return why;
  }
  u->curlu = h;
  if ((rc = curl_url_set(h, CURLUPART_URL, url, 0)) != CURLUE_OK)
    snprintf(why, whysz, "malformed URL (%s)", curl_url_strerror(rc));
  else if (curl_url_get(h, CURLUPART_SCHEME, &u->scheme, 0) != CURLUE_OK ||
           curl_url_get(h, CURLUPART_HOST, &u->host, 0) != CURLUE_OK ||
           curl_url_get(h, CURLUPART_PORT, &u->port, CURLU_DEFAULT_PORT) !=
             CURLUE_OK ||
           /* the path as libcurl sends it: bytes above 0x7f %-encoded */
           curl_url_get(h, CURLUPART_PATH, &u->path, CURLU_URLENCODE) !=
             CURLUE_OK)
    snprintf(why, whysz, "malformed URL");
  /* user info needs an '@' and a fragment a '#': ask libcurl only then */
  else if (strchr(url, '@') != NULL &&
           curl_url_get(h, CURLUPART_USER, &user, 0) == CURLUE_OK)
    snprintf(why, whysz, "credentials in the URL are not allowed");
  else if (strchr(url, '#') != NULL &&
           curl_url_get(h, CURLUPART_FRAGMENT, &user, 0) == CURLUE_OK)
    snprintf(why, whysz, "a fragment (#...) in the URL is not allowed");
  else {
    curl_url_get(h, CURLUPART_QUERY, &u->query, 0);   /* absent is fine */
    u->loopback = azb_url_is_loopback(u->host);
    u->imds = (flags & AZB_URL_IMDS) && strcmp(u->host, IMDS_HOST) == 0;
    if (strcmp(u->scheme, "https") == 0)
      ;
    else if (strcmp(u->scheme, "http") != 0)
      snprintf(why, whysz, "unsupported scheme (expected https://)");
    else if (!u->loopback && !u->imds)
      snprintf(why, whysz, "http:// is only allowed to loopback addresses "
               "(got host \"%.200s\"); use https://", u->host);
  }
  curl_free(user);
  if (why[0] != '\0') {
    azb_url_free(u);
    return why;
  }
  return NULL;
}

void azb_url_origin(const azb_url *u, char *buf, size_t n) {
  size_t i;
  snprintf(buf, n, "%s://%s:%s", u->scheme, u->host, u->port);
  for (i = 0; buf[i] != '\0'; i++)   /* hosts compare ignoring case */
    if (buf[i] >= 'A' && buf[i] <= 'Z')
      buf[i] = (char)(buf[i] - 'A' + 'a');
}

void azb_url_where(const azb_url *u, char *buf, size_t n) {
  int dflt = (strcmp(u->scheme, "https") == 0 && strcmp(u->port, "443") == 0)
          || (strcmp(u->scheme, "http") == 0 && strcmp(u->port, "80") == 0);
  snprintf(buf, n, "%s://%s%s%s%s", u->scheme, u->host, dflt ? "" : ":",
           dflt ? "" : u->port, u->path);
}

/*
** core.url_check(url) -> {scheme=, host=, port=, origin=, where=, loopback=}
** or fail (kind "validation", field "url")
*/
static int url_check(lua_State *L) {
  char why[320], buf[AZB_URL_TEXT];
  azb_url u;
  const char *url = luaL_checkstring(L, 1);
  if (azb_url_parse(url, 0, &u, why, sizeof why) != NULL)
    return azb_fail(L, "validation", "url", "url: %s", why);
  /* copy out first: pushing may raise, and u holds libcurl memory */
  {
    char scheme[16], host[256], port[8], origin[AZB_URL_TEXT];
    int loop = u.loopback;
    snprintf(scheme, sizeof scheme, "%s", u.scheme);
    snprintf(host, sizeof host, "%s", u.host);
    snprintf(port, sizeof port, "%s", u.port);
    azb_url_origin(&u, origin, sizeof origin);
    azb_url_where(&u, buf, sizeof buf);
    azb_url_free(&u);
    lua_createtable(L, 0, 6);
    lua_pushstring(L, scheme);
    lua_setfield(L, -2, "scheme");
    lua_pushstring(L, host);
    lua_setfield(L, -2, "host");
    lua_pushstring(L, port);
    lua_setfield(L, -2, "port");
    lua_pushstring(L, origin);
    lua_setfield(L, -2, "origin");
    lua_pushstring(L, buf);
    lua_setfield(L, -2, "where");
    lua_pushboolean(L, loop);
    lua_setfield(L, -2, "loopback");
  }
  return 1;
}

void azb_url_open(lua_State *L) {
  lua_pushcfunction(L, url_check);
  lua_setfield(L, -2, "url_check");
}
