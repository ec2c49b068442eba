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
** JSON (azb_json.c): text in and out. Uses azb_aux.c and azb_text.c;
** takes descriptors from its callers and calls back only through a
** shaper they pass.
** =======================================================
*/

#define AZB_JSON_DEPTH  200   /* nesting the decoder and encoder follow */

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
void azb_image_open(lua_State *L);
void azb_agent_open(lua_State *L);
void azb_schema_open(lua_State *L);
void azb_plan_open(lua_State *L);
void azb_clock_open(lua_State *L);

/* }====================================================== */

/*
** {======================================================
** Network: byte buffers, transport, Shared Key, Entra ID tokens
** (azb_buf.c, azb_util.c, azb_http.c, azb_auth.c, azb_token.c)
** =======================================================
*/

#define AZB_HTTP       "azbatch.Http"
#define AZB_REQUEST    "azbatch.Request"
#define AZB_SHAREDKEY  "azbatch.SharedKey"
#define AZB_TOKENCRED  "azbatch.TokenCredential"

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
/* CURLOPT_WRITEFUNCTION/HEADERFUNCTION shape; 'ud' is an azb_buf. */
size_t azb_buf_write(char *data, size_t size, size_t nmemb, void *ud);

/* Byte helpers in azb_buf.c, pure C too. Base64 via OpenSSL's
** EVP_EncodeBlock/DecodeBlock. */
#define AZB_B64LEN(n)  (4 * (((n) + 2) / 3))
size_t azb_b64_encode(const unsigned char *in, size_t n, char *out);
/* Strict: canonical alphabet, padding only at the end; out >= n/4*3. */
int azb_b64_decode(const char *in, size_t n, unsigned char *out,
                   size_t *outn);

/* RFC 3986: unreserved bytes kept, the rest %XX (upper-case hex). */
int azb_url_encode(azb_buf *b, const char *s, size_t n);
/* %XX decoding (and '+' as space when 'plus'); out >= n; returns length. */
size_t azb_url_decode(const char *s, size_t n, char *out, int plus);

/* "Mon, 01 Jan 2024 00:00:00 GMT"; out >= 32. */
void azb_rfc1123(double t, char *out);

/* One request header, pointing into strings anchored on the Lua stack. */
typedef struct azb_header {
  const char *name, *value;
  size_t nlen, vlen;       /* value trimmed of surrounding blanks */
} azb_header;

/*
** Read the headers at idx: an array of "Name: value" strings or a table
** name -> value. Raises on wrong Lua types. Pushes one value: scratch
** storage owning '*out' (returns the count), or a message (returns -1)
** for a malformed header (no colon, bad name, CR/LF in a value).
*/
int azb_headers_collect(lua_State *L, int idx, azb_header **out);

/*
** Check an absolute URL against the transport's rules: https, or http
** to a loopback host (also 169.254.169.254 with AZB_URL_IMDS). Pushes
** the URL without userinfo and query ("https://host/path", safe for
** messages) and returns 1, or pushes why it is refused and returns 0.
** '*direct' tells whether the host is loopback/IMDS (never proxied).
*/
#define AZB_URL_IMDS  1
int azb_url_check(lua_State *L, const char *url, int flags, int *direct);

/*
** Push a table of response headers from raw header lines: names
** lower-cased, values trimmed, repeated headers joined with ", ".
*/
void azb_push_headers(lua_State *L, const char *p, size_t n);

/* Default User-Agent: azbatch/<v> Lua/5.4 libcurl/<v>. */
void azb_push_useragent(lua_State *L);

/*
** Strict extraction of top-level string/number members of a JSON object
** (see azb_util.c for why this is not a general parser). Strings are
** decoded into 'str' (the caller frees or wipes it). Returns 0, or -1
** when the text is not one valid JSON object.
*/
enum { AZB_JNONE, AZB_JSTRING, AZB_JNUMBER, AZB_JOTHER };
typedef struct azb_jfield {
  const char *key;
  int type;
  azb_buf str;
  double num;
} azb_jfield;
int azb_json_fields(const char *s, size_t n, azb_jfield *f, int nf);

/* Options shared by the transport and the token requests. */
typedef struct azb_netopts {
  const char *user_agent, *ca_file, *ca_path;
  double timeout, connect_timeout;        /* seconds */
} azb_netopts;

/*
** Reset-and-configure a CURL easy handle (passed as void * so this
** header needs no curl.h): TLS verification on, http/https only, no
** redirects, timeouts, CA, user agent, errbuf (CURL_ERROR_SIZE bytes).
** 'direct' bypasses any proxy (loopback and IMDS). Returns a CURLcode.
*/
int azb_easy_setup(void *easy, const azb_netopts *o, int direct,
                   char *errbuf);

/*
** Push nil, "<where>: <curl error> (<strerror(os_errno)>)",
** {kind="timeout"|"transport", curl_code=, retryable=}; returns 3.
** 'where' holds no secrets; os_errno 0 adds nothing.
*/
int azb_curl_fail(lua_State *L, const char *where, int code,
                  const char *errbuf, long os_errno);

/* Raise "<what>: unknown option 'k'" for a key of table t not in known. */
void azb_check_keys(lua_State *L, int t, const char *what,
                    const char *const *known);
/* opts[k] as a number of seconds in [min, 1 year], or d when absent. */
double azb_opt_number(lua_State *L, int t, const char *k, double d,
                      double min);

/*
** Run argv (argv[0] searched in PATH when it has no '/') without a
** shell, stdin /dev/null, collecting stdout and stderr; SIGKILL after
** 'timeout' seconds. Returns the exit status, or -1 with 'why' set.
** Pure C (no Lua calls).
*/
int azb_run(const char *const argv[], double timeout, azb_buf *out,
            azb_buf *err, char *why, size_t whysz);

void azb_util_open(lua_State *L);
void azb_http_open(lua_State *L);
void azb_auth_open(lua_State *L);
void azb_token_open(lua_State *L);

/* }====================================================== */

#endif
