/*
** azb_httploop.c: the transport's event loop. Each Http's multi handle
** runs its requests; a finished, cancelled or closed request moves from
** the running list to the finished one, where poll finds it. Waiting
** happens here too: on one Http (its poll), or on several at once
** (core.wait). The lists and completion are pure C.
*/
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

#include <openssl/crypto.h>

#include "azb_http.h"

#define MAX_WAIT_FDS 512


/*
** {======================================================
** Lists and completion (pure C)
** =======================================================
*/

void azb_http_link(Request **head, Request *r) {
  r->prev = NULL;
  r->next = *head;
  if (*head != NULL)
    (*head)->prev = r;
  *head = r;
  r->listed = 1;
}

void azb_http_unlink(Request **head, Request *r) {
  if (!r->listed)
    return;
  if (r->prev != NULL)
    r->prev->next = r->next;
  else
    *head = r->next;
  if (r->next != NULL)
    r->next->prev = r->prev;
  r->prev = r->next = NULL;
  r->listed = 0;
}

/* Wipe header lines before freeing them: they carry the Authorization. */
static void free_headers(Request *r) {
  for (struct curl_slist *s = r->headers; s != NULL; s = s->next)
    OPENSSL_cleanse(s->data, strlen(s->data));
  curl_slist_free_all(r->headers);
  r->headers = NULL;
}

/* Give r's easy handle back: reset (drops pointers into r) and keep it. */
static void drop_easy(Http *h, Request *r) {
  if (r->easy != NULL) {
    if (h != NULL && h->multi != NULL) {
      curl_multi_remove_handle(h->multi, r->easy);
      if (h->nspare < SPARE_EASY) {
        curl_easy_reset(r->easy);
        h->spare[h->nspare++] = r->easy;
        r->easy = NULL;
      }
    }
    if (r->easy != NULL)
      curl_easy_cleanup(r->easy);
    r->easy = NULL;
  }
  free_headers(r);
  azb_buf_wipe(&r->send);
  azb_url_free(&r->url);
}

/*
** A running request stops: finished by libcurl, cancelled or closed.
** Finished and cancelled requests are queued for poll, so whoever waits
** on them wakes up; requests of a closing Http are not (it has no poll).
*/
void azb_http_stop(Http *h, Request *r, CURLcode code, int ended) {
  if (r->state != RQ_RUNNING)
    return;
  if (ended == END_NONE) {
    char *ip = NULL;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_getinfo(r->easy, CURLINFO_TOTAL_TIME, &r->total_time);
    curl_easy_getinfo(r->easy, CURLINFO_CONNECT_TIME, &r->connect_time);
    curl_easy_getinfo(r->easy, CURLINFO_NUM_CONNECTS, &r->connects);
    curl_easy_getinfo(r->easy, CURLINFO_OS_ERRNO, &r->os_errno);
    if (curl_easy_getinfo(r->easy, CURLINFO_PRIMARY_IP, &ip) == CURLE_OK &&
        ip != NULL)
      snprintf(r->primary_ip, sizeof r->primary_ip, "%s", ip);
    h->requests++;
    h->connections += r->connects;
  }
  {
    long sent = 0;
    curl_easy_getinfo(r->easy, CURLINFO_REQUEST_SIZE, &sent);
    r->sent = sent;
  }
  azb_http_unlink(&h->running, r);
  h->inflight--;
  drop_easy(h, r);
  r->code = code;
  r->ended = ended;
  r->state = RQ_DONE;
  if (ended != END_CLOSED)
    azb_http_link(&h->finished, r);
  else
    r->http = NULL;
}

/* Move every transfer libcurl finished to 'finished'. */
static void collect(Http *h) {
  int left;
  CURLMsg *m;
  while ((m = curl_multi_info_read(h->multi, &left)) != NULL) {
    if (m->msg == CURLMSG_DONE) {
      Request *r = NULL;
      CURLcode code = m->data.result;   /* m dies with remove_handle */
      curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
      if (r != NULL)
        azb_http_stop(h, r, code, END_NONE);
    }
  }
}

static CURLMcode act(Http *h, curl_socket_t fd, int ev) {
  int still;
  CURLMcode mc = curl_multi_socket_action(h->multi, fd, ev, &still);
  collect(h);
  return mc;
}

/* Detach a request from its Http, whatever its state (its __gc too). */
void azb_http_req_release(Request *r) {
  Http *h = r->http;
  if (h != NULL) {
    if (r->state == RQ_RUNNING)
      azb_http_stop(h, r, CURLE_ABORTED_BY_CALLBACK, END_CANCELLED);
    azb_http_unlink(&h->finished, r);
  }
  r->http = NULL;
  drop_easy(NULL, r);
  azb_buf_wipe(&r->body);
  azb_buf_free(&r->hdrs);
}

void azb_http_release(Http *h) {
  if (h->multi == NULL)
    return;
  while (h->running != NULL)
    azb_http_stop(h, h->running, CURLE_ABORTED_BY_CALLBACK, END_CLOSED);
  while (h->finished != NULL) {
    Request *r = h->finished;
    azb_http_unlink(&h->finished, r);
    r->http = NULL;
  }
  while (h->nspare > 0)
    curl_easy_cleanup(h->spare[--h->nspare]);
  curl_multi_cleanup(h->multi);
  h->multi = NULL;
  free(h->socks);        /* after the cleanup: it may still say REMOVE */
  h->socks = NULL;
  h->nsocks = h->capsocks = 0;
}

/* }====================================================== */


/*
** {======================================================
** Waiting
** =======================================================
*/

/* Forget r in the Http's request map (Http at index hi). */
void azb_http_unmap(lua_State *L, int hi, Request *r) {
  lua_getiuservalue(L, hi, UV_REQS);
  lua_pushlightuserdata(L, r);
  lua_pushnil(L);
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

/*
** libcurl's socket API (curl_multi_socket_action): libcurl says which
** sockets to watch and when its next timeout is, and each action runs
** only the transfers of the socket that is ready. curl_multi_perform ran
** every transfer and polled each connection at every wake-up, nine
** polls a request at concurrency 32 against a slow service.
*/
static int on_socket(CURL *easy, curl_socket_t fd, int what, void *hp,
                     void *sockp) {
  Http *h = (Http *)hp;
  int i = 0;
  (void)easy;
  (void)sockp;
  while (i < h->nsocks && h->socks[i].fd != fd)
    i++;
  if (what == CURL_POLL_REMOVE) {
    if (i < h->nsocks)
      h->socks[i] = h->socks[--h->nsocks];
    return 0;
  }
  if (i == h->nsocks) {
    if (h->nsocks == h->capsocks) {
      int cap = h->capsocks ? h->capsocks * 2 : 16;
      struct pollfd *p = (struct pollfd *)realloc(h->socks, sizeof *p * (size_t)cap);
      if (p == NULL)
        return -1;   /* out of memory: libcurl fails every transfer of h */
      h->socks = p;
      h->capsocks = cap;
    }
    h->socks[h->nsocks++].fd = fd;
  }
  h->socks[i].events = (short)(((what & CURL_POLL_IN) ? POLLIN : 0) |
                               ((what & CURL_POLL_OUT) ? POLLOUT : 0));
  h->socks[i].revents = 0;
  return 0;
}

static int on_timer(CURLM *multi, long ms, void *hp) {
  (void)multi;
  ((Http *)hp)->timer_at = ms < 0 ? -1 : azb_monotonic() + (double)ms / 1000;
  return 0;
}

void azb_http_watch(Http *h) {
  h->timer_at = -1;
  curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
  curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
  curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_timer);
  curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
}

/* ms until h's timer is due (0: due now), capped at 'ms'. */
static int until_timer(const Http *h, int ms) {
  double left;
  if (h->timer_at < 0)
    return ms;
  left = (h->timer_at - azb_monotonic()) * 1000;
  if (left <= 0)
    return 0;
  return left < ms ? (int)left + 1 : ms;   /* up, so it is due on waking */
}

static CURLMcode run_timer(Http *h) {
  /* libcurl moves the timer itself (it calls only when it changes) */
  if (h->timer_at >= 0 && until_timer(h, 1) == 0)
    return act(h, CURL_SOCKET_TIMEOUT, 0);
  return CURLM_OK;
}

/*
** Run what is due on h, waiting at most ms for a socket or the timer
** (0: only what is ready now); with nothing to watch it still waits, as
** Lua uses poll as its timer.
*/
CURLMcode azb_http_run(Http *h, int ms) {
  struct pollfd few[16], *ready = few;
  int n, got;
  CURLMcode mc = run_timer(h);             /* first: starts new requests */
  if (mc != CURLM_OK)
    return mc;
  if (h->finished != NULL)
    ms = 0;
  ms = until_timer(h, ms);
  n = h->nsocks;
  if (n > (int)(sizeof few / sizeof few[0]) &&
      (ready = (struct pollfd *)malloc(sizeof *ready * (size_t)n)) == NULL)
    return CURLM_OUT_OF_MEMORY;
  if (n > 0)                               /* acting changes h->socks: a copy */
    memcpy(ready, h->socks, sizeof *ready * (size_t)n);
  got = (n > 0 || ms > 0) ? poll(ready, (nfds_t)n, ms) : 0;
  for (int i = 0; i < n && got > 0 && mc == CURLM_OK; i++) {
    short re = ready[i].revents;
    if (re != 0) {
      got--;
      mc = act(h, ready[i].fd,
               ((re & (POLLIN | POLLHUP)) ? CURL_CSELECT_IN : 0) |
               ((re & POLLOUT) ? CURL_CSELECT_OUT : 0) |
               ((re & (POLLERR | POLLNVAL)) ? CURL_CSELECT_ERR : 0));
    }
  }
  if (ready != few)
    free(ready);
  return mc == CURLM_OK ? run_timer(h) : mc;
}

/* Waits at most 'wait' seconds for activity on h. */
CURLMcode azb_http_poll_one(Http *h, double wait) {
  int ms = wait > INT_MAX / 1000 ? INT_MAX : (int)(wait * 1000 + 0.5);
  return azb_http_run(h, ms);
}

/* Push the finished requests of the Http at 1 (oldest first), dequeued. */
int azb_http_push_finished(lua_State *L, Http *h) {
  Request *tail;
  int n = 0;
  lua_settop(L, 1);
  lua_newtable(L);                       /* 2 */
  lua_getiuservalue(L, 1, UV_REQS);      /* 3 */
  tail = h->finished;                    /* newest first: start at the tail */
  while (tail != NULL && tail->next != NULL)
    tail = tail->next;
  while (tail != NULL) {
    Request *r = tail;
    tail = r->prev;
    lua_pushlightuserdata(L, r);
    if (lua_rawget(L, 3) == LUA_TUSERDATA)
      lua_rawseti(L, 2, ++n);
    else
      lua_pop(L, 1);   /* dropped by Lua; its __gc is pending */
    azb_http_unlink(&h->finished, r);
    azb_http_unmap(L, 1, r);
  }
  lua_settop(L, 2);
  return 1;
}

double azb_http_check_wait(lua_State *L, int i) {
  double wait = luaL_optnumber(L, i, 0);
  luaL_argcheck(L, wait >= 0 && wait <= AZB_SECONDS_MAX, i,
                "wait must be a finite number of seconds >= 0");
  return wait;
}

/*
** core.wait({http, ...}, seconds) -> true: one wait across several
** transports, until any of them has something to do or the time is up
** (closed ones are skipped). Then poll(0) each for what finished.
*/
int azb_http_wait_many(lua_State *L) {
  struct pollfd pfd[MAX_WAIT_FDS];
  int npfd = 0, n, ms;
  double wait;
  luaL_checktype(L, 1, LUA_TTABLE);
  wait = azb_http_check_wait(L, 2);
  ms = wait * 1000 > INT_MAX ? INT_MAX : (int)(wait * 1000 + 0.5);
  n = (int)luaL_len(L, 1);
  for (int i = 1; i <= n; i++) {
    Http *h;
    lua_rawgeti(L, 1, i);
    h = (Http *)luaL_checkudata(L, -1, AZB_HTTP);
    lua_pop(L, 1);
    if (h->multi == NULL)
      continue;
    if (h->finished != NULL)
      ms = 0;
    ms = until_timer(h, ms);
    for (int k = 0; k < h->nsocks && npfd < MAX_WAIT_FDS; k++)
      pfd[npfd++] = h->socks[k];
  }
  if (ms > 0)
    poll(pfd, (nfds_t)npfd, ms);
  lua_pushboolean(L, 1);
  return 1;
}

/* }====================================================== */
