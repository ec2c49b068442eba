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
#define AZB_ARRAY      "azbatch.Array"    /* a table that is a JSON array (core.array, decoded arrays) */


/*
** {======================================================
** Text (azb_text.c, a leaf: depends on nothing else here)
** =======================================================
*/

/* ASCII character classes, whatever the C locale. */
int azb_isdigit(int c);
int azb_isalnum(int c);
int azb_isxdigit(int c);

/* Compare two strings ignoring ASCII case. */
int azb_strieq(const char *a, const char *b);
int azb_strnieq(const char *a, const char *b, size_t n);
/* Does s contain word, ignoring ASCII case? */
int azb_strihas(const char *s, const char *word);

/* Length of the well-formed UTF-8 sequence at s (RFC 3629), or 0. */
size_t azb_utf8_seq(const unsigned char *s, size_t left);
/* Is s[0..len) well-formed UTF-8? */
int azb_utf8_valid(const char *s, size_t len);
/* Code points in s[0..len) (which is well-formed). */
size_t azb_utf8_len(const char *s, size_t len);

/* Edit distance for "did you mean" (ignoring case; 3 = too far apart). */
int azb_typo_distance(const char *a, size_t n, const char *b, size_t m);

/*
** A set of names: 'count' pointers to strings, each 'stride' bytes after
** the one before: a NULL-terminated array (AZB_NAMES), or the name member
** of an array of structs (AZB_MEMBER_NAMES: descriptor fields).
*/
typedef struct azb_names {
  const char *const *first;
  size_t count, stride;
} azb_names;
#define AZB_NAMES(list)  ((azb_names){ (list), (size_t)-1, sizeof(const char *) })
#define AZB_MEMBER_NAMES(array, n, member) \
  ((azb_names){ &(array)[0].member, (n), sizeof((array)[0]) })
/* Name i of the set, or NULL past its end. */
const char *azb_names_at(azb_names set, size_t i);
/* The name in 'set' that k (n bytes) most likely meant, or NULL. */
const char *azb_suggest_in(const char *k, size_t n, azb_names set);
/* The same for a NULL-terminated list. */
const char *azb_suggest(const char *k, size_t n, const char *const *names);

/*
** Push s[0..len) between 'q' quotes for a one-line message, in Lua's
** string syntax: the quote and '\' escaped, \n \r \t, other control bytes
** and bytes that are not UTF-8 as \ddd, invisible or line-breaking code
** points (C1, bidirectional, zero-width, U+2028) as \u{x}; cut after
** AZB_QUOTE_MAX bytes of input, on a character boundary, with "...".
** Returns the pushed string.
*/
#define AZB_QUOTE_MAX 80
const char *azb_text_pushquoted(lua_State *L, const char *s, size_t len,
                                char q);

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

/* }====================================================== */


/*
** {======================================================
** Field paths and validation problems (azb_aux.c)
** =======================================================
*/

#define AZB_PATH_MAX    24    /* deepest nesting the validator follows */
#define AZB_MAX_ERRORS  20    /* problems collected before giving up */

typedef struct azb_pathseg {
  const char *key;       /* field name (len bytes), or NULL for an array index */
  size_t len;
  lua_Integer index;     /* 1-based index when key == NULL */
} azb_pathseg;

/*
** Validation context. Lives on the C stack of the Lua-facing function.
** 'errors' is the absolute stack index of a Lua array collecting
** {field=, message=} tables; 'warnings' likewise.
** Problems have a rank: a field that must be there and is not comes
** first (AZB_MISSING), everything else after, each in the order found.
*/
enum { AZB_MISSING, AZB_INVALID };

typedef struct azb_vctx {
  lua_State *L;
  const char *root;        /* "pool", "vmConfiguration", "imageReference" */
  int depth;
  azb_pathseg path[AZB_PATH_MAX];
  int nopen;               /* tables being walked (the schema walker's) */
  const void *open[AZB_PATH_MAX];
  int opendepth[AZB_PATH_MAX];
  int errors;              /* stack index of the problems kept */
  int nerrors;             /* problems recorded (may exceed AZB_MAX_ERRORS) */
  int kept[2];             /* problems kept, per rank */
  unsigned char rank[2 * AZB_MAX_ERRORS];   /* of each problem kept */
  int warnings;            /* stack index of the warnings array */
  int nwarnings;
} azb_vctx;

/* Set up a context: pushes the errors and warnings tables on the stack. */
void azb_vctx_init(azb_vctx *v, lua_State *L, const char *root);
/* Descend into field 'key' (NUL-terminated, or len bytes), or index i. */
void azb_path_key(azb_vctx *v, const char *key);
void azb_path_lkey(azb_vctx *v, const char *key, size_t len);
void azb_path_index(azb_vctx *v, lua_Integer i);
void azb_path_pop(azb_vctx *v);
/* Push the path at depth 'depth' (<= v->depth) as a string, in Lua
** syntax: pool.a.b[2]["not an identifier"]. */
void azb_path_pushto(azb_vctx *v, int depth);
/* Record a problem at the current path (lua_pushfstring formats). */
void azb_verror(azb_vctx *v, const char *fmt, ...);
/* Record a problem at the current path extended by 'key'. */
void azb_verror_at(azb_vctx *v, const char *key, const char *fmt, ...);
/* The same for a field that must be there and is not. */
void azb_vmissing(azb_vctx *v, const char *fmt, ...);
void azb_vmissing_at(azb_vctx *v, const char *key, const char *fmt, ...);
/* Record a warning at the current path; 'recommended' may be NULL. */
void azb_vwarn(azb_vctx *v, const char *recommended, const char *fmt, ...);

/*
** The one unknown-key check. Each key of the table at idx that is not
** in 'known' is a problem at its own path, in byte order:
** "pool.vmsize: unknown field (did you mean 'vmSize'?)"; a key that is
** not a string is "unexpected <type> key (field names are strings)"
** (at [n] for an integer). A key that suggests a name the table lacks
** stands for that missing field: it is ranked AZB_MISSING and bit i of
** '*meant' is set for name i (i < 64), so the caller does not report
** the field missing too. Returns how many problems were recorded.
*/
int azb_vcheck_keys(azb_vctx *v, int idx, azb_names known, uint64_t *meant);

/*
** If problems were recorded, push nil, message, err and return 3 (err:
** {kind="validation", field=, errors=, count=}, errors in rank order, at
** most AZB_MAX_ERRORS); otherwise return 0 and leave the stack as it was.
*/
int azb_vctx_fail(azb_vctx *v);

/* }====================================================== */


/*
** {======================================================
** Results and classes (azb_aux.c)
** =======================================================
*/

/* Push fail, "<msg>", {kind=kind, field=field}; returns 3. 'field' may
** be NULL. */
int azb_fail(lua_State *L, const char *kind, const char *field,
             const char *fmt, ...);

/* Create a metatable with methods table as __index. Leaves it on the stack. */
void azb_newclass(lua_State *L, const char *tname, const luaL_Reg *meta,
                  const luaL_Reg *methods);

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
/* The same, and on failure '*where' is the offending segment, or the
** whole input when its shape is wrong. */
const char *azb_armid_parse_ex(const char *s, size_t len, azb_armid *out,
                               azb_span *where);

/* }====================================================== */


/*
** {======================================================
** Descriptors: the REST contract as data. The walker (azb_schema.c)
** validates by them; the encoder (azb_json.c) reads the key order and
** nesting of a body the walker built. Data only: no functions here.
** =======================================================
*/

typedef enum azb_type {
  AZB_T_STRING,
  AZB_T_INT,        /* Lua integer; integral floats accepted */
  AZB_T_BOOL,
  AZB_T_ENUM,       /* string matched ignoring case, stored as in the contract */
  AZB_T_DURATION,   /* ISO-8601 duration string, bounds in seconds */
  AZB_T_OBJECT,     /* nested object: 'object' */
  AZB_T_ARRAY,      /* sequence of 'elem' (OBJECT, STRING or ENUM) */
  AZB_T_MAP,        /* free-form JSON object, string keys, 'elem' values */
  AZB_T_CUSTOM      /* 'custom' validates and pushes the copy */
} azb_type;

#define AZB_REQUIRED  0x1u   /* missing (nil or JSON null) is an error */
#define AZB_SECRET    0x2u   /* value never echoed in a message */

struct azb_object;

typedef struct azb_field {
  const char *name;
  azb_type type;
  unsigned flags;
  const struct azb_object *object;  /* OBJECT, ARRAY of OBJECT; CUSTOM: JSON key order */
  azb_type elem;                    /* ARRAY and MAP elements */
  const char *const *enums;         /* ENUM, ARRAY of ENUM; NULL-terminated */
  lua_Integer min, max;             /* INT range; STRING length in characters
                                    ** (max 0 = unbounded); ARRAY item count */
  double dmin, dmax;                /* DURATION bounds in seconds (0 = none) */
  /* Extra check on a scalar (each element of an ARRAY) after its type
  ** check; records problems at the current path; returns 0 on a problem. */
  int (*check)(azb_vctx *v, int idx);
  /* CUSTOM: validate the value at idx and push the copy (or nil). */
  void (*custom)(azb_vctx *v, int idx);
} azb_field;

typedef struct azb_object {
  const char *name;                 /* contract name, e.g. "BatchStartTask" */
  const azb_field *fields;          /* in the contract's property order */
  size_t nfields;
  /* Cross-field rules; path at the object. 'src' is the caller's table
  ** (presence), 'copy' the normalised copy (values). */
  void (*rule)(azb_vctx *v, int src, int copy);
} azb_object;

/* The JSON key order of an image reference (azb_image.c validates). */
extern const azb_object azb_BatchVmImageReference;

/* }====================================================== */


/*
** {======================================================
** JSON (azb_json.c registers; azb_jsondec.c decodes, azb_jsonenc.c
** encodes): text in and out. Uses azb_aux.c and azb_text.c;
** takes descriptors from its callers and calls back only through a
** shaper they pass.
** =======================================================
*/

#define AZB_JSON_DEPTH  200   /* nesting the decoder and encoder follow */
/* A macro's value as a string literal: AZB_STR(AZB_JSON_DEPTH) is "200". */
#define AZB_STR_(x)     #x
#define AZB_STR(x)      AZB_STR_(x)

/*
** A caller's say over a table with a metatable (other than AZB_ARRAY's)
** met in a generic encode: return 0 to encode it generically; 1 after
** pushing the value to write instead, '*o' its descriptor (or NULL); -1
** after recording problems in v.
*/
typedef int (*azb_json_shaper)(azb_vctx *v, int idx, const struct azb_object **o);

/*
** Encode the value at idx and push the text (returns 1), or record why
** not in v (returns 0, the stack as it was). With a descriptor 'o' the
** value is a body the walker has just built: only its key order and
** nesting are read. Without, the value is encoded generically (objects
** with sorted keys, AZB_ARRAY tables as arrays) and 'shaper' (may be
** NULL) is asked about tables with other metatables.
*/
int azb_json_encode(azb_vctx *v, int idx, const azb_object *o,
                    azb_json_shaper shaper);
/* Create the encoder's buffer class (azb_jsonenc.c). */
void azb_json_encoder_open(lua_State *L);
/* core.json_decode(text [, {depth=}]) -> value | fail (azb_jsondec.c) */
int azb_json_decode(lua_State *L);

/* }====================================================== */


/*
** {======================================================
** Image references (azb_image.c, azb_agent.c) and the planner (azb_plan.c)
** =======================================================
*/

/* Validate an image reference (table or string at idx) within v; push the
** normalised table (with AZB_IMAGEREF metatable) or nil on problems. */
void azb_image_check(azb_vctx *v, int idx);
/* Is the value at idx a table with the ImageReference metatable? */
int azb_image_is(lua_State *L, int idx);
/* The string field k of the table at idx (raw access), or NULL; the string
** stays anchored by the table. */
const char *azb_image_field(lua_State *L, int idx, const char *k, size_t *n);

/*
** Check nodeAgentSKUId against the normalised image reference at imgidx
** (absolute index); records problems at the current path, which is the
** virtual machine configuration.
*/
void azb_image_check_agent(azb_vctx *v, int imgidx, const char *agent);

/* Is s[0..n) the URL of a .vhd blob? (Batch takes no VHD: the legacy
** flow's image is made into a managed image first.) */
int azb_image_is_vhd(const char *s, size_t n);
/* Record, at the current path (extended by key when not NULL), what a
** VHD given as the image must become. */
void azb_image_vhd_error(azb_vctx *v, const char *key);

/* Planner figures used by the pool validator's warnings. */
lua_Integer azb_plan_replicas(lua_Integer nodes);
double azb_plan_resize_timeout(lua_Integer nodes);   /* seconds */

/* }====================================================== */


/*
** {======================================================
** Areas: each registers its functions into the module table on top
** =======================================================
*/

void azb_text_open(lua_State *L);
void azb_json_open(lua_State *L);
/* Is the value at idx JSON null (core.null)? (azb_json.c) */
int azb_isnull(lua_State *L, int idx);
void azb_image_open(lua_State *L);
void azb_agent_open(lua_State *L);
void azb_schema_open(lua_State *L);
void azb_plan_open(lua_State *L);
void azb_clock_open(lua_State *L);
/* Seconds on a monotonic clock (azb_clock.c): deadlines and timers. */
double azb_monotonic(void);

/* }====================================================== */

/*
** {======================================================
** Network: buffers, encodings, URLs, options, the wire, the transport,
** Shared Key, Entra ID tokens (azb_buf.c, azb_codec.c, azb_url.c,
** azb_opts.c, azb_wire.c, the transport in azb_http.c and its
** azb_http*.c (internal header azb_http.h), azb_auth.c, the token
** credential in azb_token.c and its azb_token*.c (azb_token.h),
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
** Preflight rules and the node agent chooser (azb_preflight.c and its
** azb_pf*.c, whose shared declarations are in azb_preflight.h;
** azb_agentpick.c; azb_facts.c reads the facts both judge; pure checks:
** facts in, findings out)
** =======================================================
*/

void azb_agentpick_open(lua_State *L);
/* Needs core.choose_node_agent registered first (azb_agentpick_open). */
void azb_preflight_open(lua_State *L);

/* Image reference kinds: what core.image_kind says (azb_image.c) and what
** facts.image.kind names for preflight and the node agent chooser. */
enum { K_MARKET, K_GVERSION, K_GLATEST, K_MANAGED, K_SHARED, K_COMMUNITY,
       K_VHD, K_NKINDS };
extern const char *const azb_image_kinds[K_NKINDS + 1];      /* NULL-ended */

/* Reading facts tables, raw (azb_facts.c); t = 0 is an absent table. */
int azb_facts_get(lua_State *L, int t, const char *k);        /* pushes; type */
azb_span azb_facts_str(lua_State *L, int t, const char *k);   /* string or {0} */
int azb_facts_sub(lua_State *L, int t, const char *k);        /* pushed index or 0 */
int azb_facts_table(lua_State *L, const char *k, int optional);  /* facts at 1 */
int azb_facts_image_kind(lua_State *L, int img);  /* img.kind as K_*; raises */

/* }====================================================== */

#endif
