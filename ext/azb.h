/*
** azb.h: internal header of the azbatch.core module.
** Everything here has hidden visibility; the only exported symbol is
** luaopen_azbatch_core.
*/
#ifndef AZB_H
#define AZB_H

#include <stddef.h>
#include <stdint.h>

#include "lua.h"
#include "lauxlib.h"

#define AZB_VERSION       "0.1.0"
#define AZB_API_VERSION   "2025-06-01"

/* Metatable names (also the __name shown in messages). */
#define AZB_IMAGEREF   "azbatch.ImageReference"
#define AZB_VMCONFIG   "azbatch.VmConfiguration"
#define AZB_POOLSPEC   "azbatch.PoolSpec"
#define AZB_ARRAY      "azbatch.Array"    /* marks a table that encodes as a JSON array */


/*
** {======================================================
** Field paths and validation problems
** =======================================================
*/

#define AZB_PATH_MAX    24    /* deepest nesting the validator follows */
#define AZB_MAX_ERRORS  20    /* problems collected before giving up */

typedef struct azb_pathseg {
  const char *key;       /* field name, or NULL for an array index */
  lua_Integer index;     /* 1-based index when key == NULL */
} azb_pathseg;

/*
** Validation context. Lives on the C stack of the Lua-facing function.
** 'errors' is the absolute stack index of a Lua array collecting
** {field=, message=} tables; 'warnings' likewise (0 when not collected).
*/
typedef struct azb_vctx {
  lua_State *L;
  const char *root;        /* "pool", "vmConfiguration", "imageReference" */
  int depth;
  azb_pathseg path[AZB_PATH_MAX];
  int errors;              /* stack index of the errors array */
  int nerrors;             /* problems recorded (may exceed AZB_MAX_ERRORS) */
  int warnings;            /* stack index of the warnings array, or 0 */
  int nwarnings;
} azb_vctx;

/* Set up a context: pushes the errors and warnings tables on the stack. */
void azb_vctx_init(azb_vctx *v, lua_State *L, const char *root);
void azb_path_key(azb_vctx *v, const char *key);
void azb_path_index(azb_vctx *v, lua_Integer i);
void azb_path_pop(azb_vctx *v);
/* Push the current path as a string ("pool.a.b[2].c"). */
void azb_path_push(azb_vctx *v);
/* Record a problem at the current path (printf-like, lua_pushfstring formats). */
void azb_verror(azb_vctx *v, const char *fmt, ...);
/* Record a problem at the current path extended by 'key'. */
void azb_verror_at(azb_vctx *v, const char *key, const char *fmt, ...);
/* Record a warning at the current path; 'recommended' may be NULL. */
void azb_vwarn(azb_vctx *v, const char *recommended, const char *fmt, ...);
/*
** If problems were recorded, push nil, message, err and return 3;
** otherwise return 0 and leave the stack as it was.
*/
int azb_vctx_fail(azb_vctx *v);

/* }====================================================== */


/*
** {======================================================
** Results
** =======================================================
*/

/*
** Push fail, "<msg>", {kind=kind, field=field}; returns 3.
** 'field' may be NULL. The err table is left for the caller to extend
** only through azb_fail_table.
*/
int azb_fail(lua_State *L, const char *kind, const char *field,
             const char *fmt, ...);

/* Register funcs into the table on top, with 'nup' shared upvalues. */
void azb_setfuncs(lua_State *L, const luaL_Reg *l, int nup);

/* Create a metatable with methods table as __index. Leaves it on the stack. */
void azb_newclass(lua_State *L, const char *tname, const luaL_Reg *meta,
                  const luaL_Reg *methods);

/* }====================================================== */


/*
** {======================================================
** Text (azb_text.c, a leaf: depends on nothing else here)
** =======================================================
*/

/* Compare two strings ignoring ASCII case. */
int azb_strieq(const char *a, const char *b);
int azb_strnieq(const char *a, const char *b, size_t n);

/* Length of the well-formed UTF-8 sequence at s (RFC 3629), or 0. */
size_t azb_utf8_seq(const unsigned char *s, size_t left);
/* Is s[0..len) well-formed UTF-8? */
int azb_utf8_valid(const char *s, size_t len);
/* Code points in s[0..len) (which is well-formed). */
size_t azb_utf8_len(const char *s, size_t len);

/* Edit distance for "did you mean" (ignoring case; 3 = too far apart). */
int azb_typo_distance(const char *a, size_t n, const char *b, size_t m);
/* The name in 'names' (NULL-terminated) closest to k, or NULL. */
const char *azb_suggest(const char *k, size_t n, const char *const *names);

/*
** Clean a string that came from the network for one line of a message
** or a terminal: CR, LF and tab become one space, other control bytes
** (ESC included), C1 controls and bidirectional overrides are dropped,
** bytes that are not UTF-8 become '?', and the result is cut to 'max'
** bytes (>= 4) on a character boundary, ending in "..." when cut.
** 'out' holds min(len, max) bytes. Returns the length written.
*/
#define AZB_TEXT_MAX 512
size_t azb_text_clean(const char *s, size_t len, char *out, size_t max);

void azb_text_open(lua_State *L);

/* }====================================================== */


/*
** {======================================================
** Pure parsers (no Lua; never raise; fuzzed)
** =======================================================
*/

/* ISO-8601 duration ("PT15M", "P1DT2H30M", "PT0.5S"); returns NULL or why. */
const char *azb_duration_parse(const char *s, size_t len, double *seconds);
/* Format whole seconds as a canonical duration ("PT30M", "P1DT2H"). buf >= 48. */
void azb_duration_format(double seconds, char *buf, size_t bufsz);

typedef enum azb_armkind {
  AZB_ARM_NONE = 0,
  AZB_ARM_GALLERY_VERSION,   /* .../galleries/g/images/i/versions/v */
  AZB_ARM_GALLERY_IMAGE,     /* .../galleries/g/images/i (latest) */
  AZB_ARM_MANAGED_IMAGE,     /* .../providers/Microsoft.Compute/images/n */
  AZB_ARM_SHARED_GALLERY,    /* /SharedGalleries/{uniq}/Images/i[/Versions/v] */
  AZB_ARM_COMMUNITY_GALLERY  /* /CommunityGalleries/{name}/Images/i[/Versions/v] */
} azb_armkind;

typedef struct azb_span { const char *p; size_t n; } azb_span;

typedef struct azb_armid {
  azb_armkind kind;
  azb_span subscription, resource_group, gallery, image, version, name;
} azb_armid;

/*
** Parse an image resource id. Returns NULL on success or a static message
** saying what is wrong. Spans point into 's'.
*/
const char *azb_armid_parse(const char *s, size_t len, azb_armid *out);

/* }====================================================== */


/*
** {======================================================
** Areas: each registers its functions into the module table on top
** =======================================================
*/

void azb_image_open(lua_State *L);
void azb_schema_open(lua_State *L);
void azb_json_open(lua_State *L);
void azb_plan_open(lua_State *L);
void azb_clock_open(lua_State *L);
void azb_agent_open(lua_State *L);

/* Validate an image reference (table or string at idx) within v; push the
** normalised table (with AZB_IMAGEREF metatable) or nil on problems. */
void azb_image_check(azb_vctx *v, int idx);

/*
** Check nodeAgentSKUId against the normalised image reference at imgidx
** (absolute index); records problems at the current path, which is the
** virtual machine configuration.
*/
void azb_image_check_agent(azb_vctx *v, int imgidx, const char *agent);

/* Planner figures used by the pool validator's warnings. */
lua_Integer azb_plan_replicas(lua_Integer nodes);
double azb_plan_resize_timeout(lua_Integer nodes);   /* seconds */

/* }====================================================== */

/*
** {======================================================
** Image and plan areas: extra shared helpers
** (azb_arm.c, azb_image.c; added by the image/plan area)
** =======================================================
*/

/*
** azb_armid_parse that also says where: on failure '*where' is the
** offending segment, or the whole input when its shape is wrong.
*/
const char *azb_armid_parse_ex(const char *s, size_t len, azb_armid *out,
                               azb_span *where);

/*
** Push s[0..len) quoted with 'q' for a one-line message: quotes,
** backslashes and control bytes escaped, long input cut with "...".
*/
void azb_image_pushquoted(lua_State *L, const char *s, size_t len, char q);

/*
** Record "unknown field 'k' (did you mean 'x'?)" for each string key of
** the table at idx not in 'known' (NULL-terminated), and a problem for
** each non-string key, at the current path. Returns how many.
*/
int azb_image_checkkeys(azb_vctx *v, int idx, const char *const *known);

/* The string field k of the table at idx (raw access), or NULL; the string
** stays anchored by the table. */
const char *azb_image_field(lua_State *L, int idx, const char *k, size_t *n);

/* }====================================================== */

/*
** {======================================================
** Network: buffers, encodings, URLs, options, the wire, the transport,
** Shared Key, Entra ID tokens (azb_buf.c, azb_codec.c, azb_url.c,
** azb_opts.c, azb_wire.c, azb_http.c, azb_auth.c, azb_token.c,
** azb_jfields.c, azb_proc.c)
** =======================================================
*/

#define AZB_HTTP       "azbatch.Http"
#define AZB_REQUEST    "azbatch.Request"
#define AZB_SHAREDKEY  "azbatch.SharedKey"
#define AZB_TOKENCRED  "azbatch.TokenCredential"

#define AZB_SECONDS_MAX (86400.0 * 365)   /* longest timeout or wait */

/*
** Growable byte buffer, filled from libcurl callbacks: pure C, never
** raises. 'p' is NUL-terminated once anything was added. After a failed
** allocation 'oom' is set and later adds are no-ops returning -1.
*/
typedef struct azb_buf {
  char *p;
  size_t n, cap;
  int oom;
} azb_buf;

void azb_buf_init(azb_buf *b);
int azb_buf_add(azb_buf *b, const void *s, size_t n);   /* 0 or -1 */
int azb_buf_adds(azb_buf *b, const char *s);
int azb_buf_addc(azb_buf *b, int c);
void azb_buf_reset(azb_buf *b);           /* empty it, keep the memory */
void azb_buf_free(azb_buf *b);
void azb_buf_wipe(azb_buf *b);            /* OPENSSL_cleanse, then free */

/* Encodings (azb_codec.c). Base64 via OpenSSL's EVP_EncodeBlock. */
#define AZB_B64LEN(n)  (4 * (((n) + 2) / 3))
size_t azb_b64_encode(const unsigned char *in, size_t n, char *out);
/* Strict: canonical alphabet, padding only at the end; out >= n/4*3. */
int azb_b64_decode(const char *in, size_t n, unsigned char *out,
                   size_t *outn);
/* RFC 3986: unreserved bytes kept, the rest %XX (upper-case hex). */
size_t azb_url_encode_to(const char *s, size_t n, char *out);  /* out >= 3n */
int azb_url_encode(azb_buf *b, const char *s, size_t n);
/* The value of a hex digit, or -1. */
int azb_hexval(int c);
/* %XX decoding (and '+' as space when 'plus'); out >= n; returns length. */
size_t azb_url_decode(const char *s, size_t n, char *out, int plus);
/* "Mon, 01 Jan 2024 00:00:00 GMT"; out >= 32. */
void azb_rfc1123(double t, char *out);

/*
** A URL parsed once by libcurl (azb_url.c). The strings are libcurl's;
** 'path' is as libcurl sends it (bytes above 0x7f %-encoded), 'query' is
** raw or NULL, 'port' is explicit or the scheme's default. Refused:
** other schemes, user info, fragments, and http:// except to loopback
** (and, with AZB_URL_IMDS, the instance metadata address).
*/
#define AZB_URL_IMDS  1
#define AZB_URL_TEXT  512   /* room for an origin or a "where" */
typedef struct azb_url {
  void *curlu;              /* CURLU *, handed to libcurl as parsed */
  char *scheme, *host, *port, *path, *query;
  int loopback, imds;
} azb_url;
/* Returns NULL, or why in 'why' (and 'u' is empty). */
const char *azb_url_parse(const char *url, int flags, azb_url *u,
                          char *why, size_t whysz);
void azb_url_free(azb_url *u);
int azb_url_is_loopback(const char *host);
/* "scheme://host:port", lower case: two URLs are on one endpoint when equal */
void azb_url_origin(const azb_url *u, char *buf, size_t n);
/* "scheme://host[:port]/path" without the query, safe for messages */
void azb_url_where(const azb_url *u, char *buf, size_t n);

/* Options (azb_opts.c): raise on an unknown key, with a suggestion. */
void azb_check_options(lua_State *L, int t, int arg, const char *fname,
                       const char *const *known);
/* opts[k] as finite seconds in [min, AZB_SECONDS_MAX], or d when absent. */
double azb_opt_seconds(lua_State *L, int t, const char *k, double d,
                       double min);

/* One request header, pointing into strings anchored on the Lua stack. */
typedef struct azb_header {
  const char *name, *value;
  size_t nlen, vlen;       /* value trimmed of surrounding blanks */
} azb_header;

/*
** Read the headers table at idx (name -> value) into an array with room
** for 'extra' more, sorted by name ignoring case. Raises on wrong Lua
** types. Pushes one value: the array's storage (returns the count), or
** a message (returns -1) for a malformed or repeated header.
*/
int azb_headers_collect(lua_State *L, int idx, int extra, azb_header **out);
int azb_header_cmp(const azb_header *a, const azb_header *b);  /* by name */
int azb_header_is(const azb_header *h, const char *name);
/* Push a table of response headers from raw header lines: names
** lower-cased, values trimmed and cleaned, repeats joined with ", ". */
void azb_push_headers(lua_State *L, const char *p, size_t n);
/*
** Push nil, "<where>: <curl error>", {kind="timeout"|"transport",
** curl_code=, retryable=, sent=}; returns 3. 'sent' says whether any
** request byte left.
*/
int azb_curl_fail(lua_State *L, const char *where, int code,
                  const char *errbuf, long os_errno, int sent);
/* Default User-Agent: azbatch/<v> Lua/5.4 libcurl/<v>. */
void azb_push_useragent(lua_State *L);

/* A request for azb_http_start. Strings must stay anchored meanwhile. */
typedef struct azb_reqspec {
  const char *method, *url;
  int url_flags;                 /* AZB_URL_IMDS */
  const char *origin;            /* NULL, or the origin the URL must be on */
  const azb_header *headers;     /* from azb_headers_collect */
  int nheaders;
  const char *body;              /* NULL: none */
  size_t bodylen;
  /* a secret body, written by fill() into the request's own wiped
  ** buffer; its answer is never given to Lua (see azb_http_response) */
  int secret;
  const char *(*fill)(void *ud, azb_buf *body);
  void *fill_ud;
  double timeout, connect_timeout;
  size_t max_response;           /* 0: the transport's */
  int fresh_connect, keep_headers, verbose;
  int auth;                      /* stack index of a SharedKey or a TokenCredential, or 0 */
  const char *scope;             /* for a TokenCredential */
  size_t scopelen;
  const char *user_agent, *ca_file, *ca_path;
} azb_reqspec;
/* Fill timeouts, agent, CA and verbosity from the Http at hidx and the
** options table at t (0: none). Pushes anchors on the stack. */
void azb_http_defaults(lua_State *L, int hidx, int t, azb_reqspec *rs);
/* Start a request on the open Http at hidx; bodyidx anchors rs->body
** (0: none). Pushes the Request (returns 1) or a fail (returns 3). */
int azb_http_start(lua_State *L, int hidx, int bodyidx, const azb_reqspec *rs);

/* A finished request's answer, read in place (token answers). */
typedef struct azb_response {
  int ok;                        /* an HTTP answer arrived whole */
  long status;
  const azb_buf *body, *hdrs;
} azb_response;
int azb_http_response(lua_State *L, int idx, azb_response *out);
void azb_http_wipe(lua_State *L, int idx);   /* forget the answer */

/* The Authorization value for a request, into 'out'; NULL or why not. */
const char *azb_sharedkey_authorize(lua_State *L, int kidx,
                                    const char *method,
                                    const azb_header *hs, int nh,
                                    const char *path, const char *query,
                                    azb_buf *out);
const char *azb_token_authorize(lua_State *L, int idx, const char *scope,
                                size_t sn, azb_buf *out);

/*
** Strict extraction of top-level string/number members of a JSON object
** (azb_jfields.c). Strings are decoded into 'str' (the caller frees or
** wipes it). Returns 0, or -1 when the text is not one valid JSON object.
*/
enum { AZB_JNONE, AZB_JSTRING, AZB_JNUMBER, AZB_JOTHER };
typedef struct azb_jfield {
  const char *key;
  int type;
  azb_buf str;
  double num;
} azb_jfield;
int azb_json_fields(const char *s, size_t n, azb_jfield *f, int nf);

/*
** Run argv (argv[0] searched in PATH when it has no '/') without a
** shell, stdin /dev/null, collecting stdout and stderr; SIGKILL after
** 'timeout' seconds. Returns the exit status, or -1 with 'why' set.
** Pure C (azb_proc.c).
*/
int azb_run(const char *const argv[], double timeout, azb_buf *out,
            azb_buf *err, char *why, size_t whysz);

void azb_codec_open(lua_State *L);
void azb_proc_open(lua_State *L);
void azb_url_open(lua_State *L);
void azb_opts_open(lua_State *L);
void azb_http_open(lua_State *L);
void azb_auth_open(lua_State *L);
void azb_token_open(lua_State *L);

/* }====================================================== */

/*
** {======================================================
** Preflight rules and the node agent chooser
** (azb_preflight.c, azb_agentpick.c; pure checks: facts in, findings out)
** =======================================================
*/

void azb_agentpick_open(lua_State *L);
/* Needs core.choose_node_agent registered first (azb_agentpick_open). */
void azb_preflight_open(lua_State *L);

/* }====================================================== */

#endif
