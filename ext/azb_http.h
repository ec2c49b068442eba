/*
** azb_http.h: the transport (internal). The Http and Request structs and
** what the transport's files give each other:
**   azb_http.c     the azbatch.Http class: options, http:start, poll,
**                  request, and the module's registration
**   azb_httpreq.c  building a request (azb_http_start) and the libcurl
**                  callbacks that fill it
**   azb_httploop.c the multi handle: request lists, completion, waiting
**                  on one or several transports
**   azb_httpres.c  a finished request's results, and the Request class
** The cross-area API (azb_http_start, azb_http_response, ...) is in azb.h.
*/
#ifndef AZB_HTTP_H
#define AZB_HTTP_H

#include <poll.h>

#include <curl/curl.h>

#include "azb.h"

#define SPARE_EASY   32             /* idle easy handles kept for reuse: a burst of
                                       completions at concurrency 32 frees none */
#define MAX_HEADERS  (256 * 1024)   /* response header block */

typedef struct Http Http;
typedef struct Request Request;

enum { RQ_NEW, RQ_RUNNING, RQ_DONE };
enum { END_NONE, END_CANCELLED, END_CLOSED };
enum { TOO_LARGE_BODY = 1, TOO_LARGE_HEADERS };

struct Request {
  Http *http;              /* set while linked into one of its lists */
  Request *prev, *next;
  CURL *easy;              /* while running */
  struct curl_slist *headers;
  azb_url url;             /* owns the CURLU libcurl reads */
  azb_buf body, hdrs;      /* the response */
  azb_buf send;            /* a secret request body, wiped */
  size_t max_body;
  int state, ended, keep_headers, listed, secret, too_large;
  int taken;               /* req:take() let go of the result */
  int sends;               /* times libcurl sent it: > 1 when it re-sent by itself */
  CURLcode code;
  long status, connects, os_errno;
  curl_off_t sent;         /* request bytes that left */
  double total_time, connect_time;
  char primary_ip[64];
  char errbuf[CURL_ERROR_SIZE];
  char reason[96];         /* why it was cancelled */
};

struct Http {
  CURLM *multi;            /* NULL once closed */
  Request *running;        /* in the multi handle */
  Request *finished;       /* done, not yet returned by poll */
  struct pollfd *socks;     /* the sockets libcurl asks to be watched */
  int nsocks, capsocks;
  double timer_at;          /* when libcurl wants a timeout action; < 0: never */
  CURL *spare[SPARE_EASY];
  int nspare, verbose;
  double timeout, connect_timeout;
  size_t max_response;
  lua_Integer requests, connections, inflight;
};

/* User values of an Http. */
#define UV_REQS   1   /* weak table: lightuserdata(Request*) -> Request */
#define UV_UA     2
#define UV_CAFILE 3
#define UV_CAPATH 4
/* User values of a Request. */
#define UV_HTTP   1   /* keeps the Http alive under it */
#define UV_BODY   2   /* the request body string libcurl reads */
#define UV_WHERE  3   /* "GET https://host/path" for messages */
#define UV_RESULT 4   /* cached results, once materialised */

/* Lists and completion (azb_httploop.c; pure C). */
void azb_http_link(Request **head, Request *r);
void azb_http_unlink(Request **head, Request *r);
void azb_http_stop(Http *h, Request *r, CURLcode code, int ended);
void azb_http_watch(Http *h);
CURLMcode azb_http_run(Http *h, int ms);
void azb_http_req_release(Request *r);
void azb_http_release(Http *h);
/* Waiting (azb_httploop.c). */
void azb_http_unmap(lua_State *L, int hi, Request *r);
CURLMcode azb_http_poll_one(Http *h, double wait);
int azb_http_push_finished(lua_State *L, Http *h);
double azb_http_check_wait(lua_State *L, int i);
int azb_http_wait_many(lua_State *L);            /* core.wait */

/* Results (azb_httpres.c). */
int azb_http_push_result(lua_State *L, Request *r, int ri);
/* Create the azbatch.Request class. */
void azb_http_request_open(lua_State *L);

#endif
