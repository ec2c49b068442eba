/*
** azb_token.h: Entra ID credentials (internal). The credential and its
** cache, a fetch's outcome, and what the token files give each other:
**   azb_token.c     the azbatch.TokenCredential object: options, the
**                   per-scope cache, what the transport asks of it
**   azb_tokenreq.c  forming token requests: the form body, the IMDS URL,
**                   the az command line (cred:start, cred:run)
**   azb_tokenans.c  reading answers: token JSON, az's output and errors,
**                   into the cache or a fail triple (cred:finish)
*/
#ifndef AZB_TOKEN_H
#define AZB_TOKEN_H

#include "azb.h"

enum { K_SECRET, K_WORKLOAD, K_MI, K_CLI };
extern const char *const azb_token_kinds[];

#define TEXT_MAX          400          /* error text kept for messages */

typedef struct tcache {
  struct tcache *next;
  char *scope, *token;
  size_t scopelen, toklen;
  double obtained, expires_on;
} tcache;

typedef struct TokenCred {
  int kind, closed;
  char *secret;             /* client_secret; wiped */
  size_t secretlen;
  azb_buf sent;             /* workload: the assertion last sent, for redaction */
  tcache *cache;
  double refresh_before, timeout, connect_timeout;
} TokenCred;

/* User value 1: a table of the non-secret settings (strings). */
#define UV_CFG 1

/* What a fetch found out; all fixed-size, so no Lua call needs a free. */
typedef struct outcome {
  int ok;                  /* token cached */
  long status;
  int exit_code;           /* azure_cli */
  double expires_on;
  char error[128], desc[TEXT_MAX], request_id[128], problem[TEXT_MAX];
} outcome;

/* The credential (azb_token.c). */
TokenCred *azb_token_check_open(lua_State *L);
const char *azb_token_check_scope(lua_State *L, int i, size_t *sn);
/* Store a token (copied); returns the entry or NULL (out of memory). */
tcache *azb_token_cache_put(TokenCred *c, const char *scope, size_t sn,
                            const char *tok, size_t tn, double now,
                            double exp);

/* Forming requests (azb_tokenreq.c): cred:start and cred:run. */
int azb_token_start(lua_State *L);
int azb_token_run(lua_State *L);

/* Reading answers (azb_tokenans.c). */
void azb_token_take_response(TokenCred *c, const char *scope, size_t sn,
                             const azb_buf *resp, outcome *o);
void azb_token_cli_problem(const azb_buf *err, const char *prog, outcome *o);
void azb_token_push_failure(lua_State *L, TokenCred *c, const outcome *o);
int azb_token_fail(lua_State *L, TokenCred *c);
int azb_token_finish(lua_State *L);            /* cred:finish */

#endif
