/*
** azb_arm.c: the grammar of the image resource ids Batch accepts in
** imageReference (gallery versions and definitions, managed images,
** shared and community gallery ids).
** Pure C: no Lua calls, never raises, no allocation (fuzzed).
*/
#include <string.h>

#include "azb.h"

#define MAX_SEGS 16   /* the longest valid id has 12 segments */

static const char TEMPLATE[] =
  "expected '/subscriptions/{subscriptionId}/resourceGroups/...', "
  "'/SharedGalleries/...' or '/CommunityGalleries/...'";
static const char INCOMPLETE_SUB[] =
  "incomplete resource id; expected '/subscriptions/{subscriptionId}/"
  "resourceGroups/{resourceGroup}/providers/Microsoft.Compute/galleries/"
  "{gallery}/images/{image}[/versions/{version}]' or "
  "'.../providers/Microsoft.Compute/images/{name}'";
static const char INCOMPLETE_SHARED[] =
  "incomplete resource id; expected '/SharedGalleries/{galleryUniqueName}/"
  "Images/{image}[/Versions/{version}]'";
static const char INCOMPLETE_COMMUNITY[] =
  "incomplete resource id; expected '/CommunityGalleries/{publicName}/"
  "Images/{image}[/Versions/{version}]'";
static const char BAD_VERSION[] =
  "version must be 'major.minor.patch' or 'latest'";
static const char BAD_IMAGE[] =
  "image definition name must be 1-80 letters, digits, '_', '-' or '.', "
  "starting with a letter or digit and ending with a letter, digit or '_'";


/*
** {======================================================
** Character classes and name rules
** =======================================================
*/

/* Case-insensitive keyword match. */
static int span_is(azb_span sp, const char *word) {
  return strlen(word) == sp.n && azb_strnieq(sp.p, word, sp.n);
}

/* 8-4-4-4-12 hex digits */
static int is_guid(azb_span sp) {
  static const size_t groups[] = { 8, 4, 4, 4, 12 };
  size_t i = 0;
  if (sp.n != 36)
    return 0;
  for (int g = 0; g < 5; g++) {
    if (g > 0 && sp.p[i++] != '-')
      return 0;
    for (size_t k = 0; k < groups[g]; k++)
      if (!azb_isxdigit((unsigned char)sp.p[i++]))
        return 0;
  }
  return 1;
}

/*
** 1-90 characters of letters, digits, '_', '-', '.', '(' and ')', not
** ending in '.'. ARM also takes Unicode letters in group names, so
** well-formed UTF-8 sequences pass as letters and the length counts
** characters (bytes that are not UTF-8 do not pass: the fuzzer found
** that stray continuation bytes counted as nothing, so a "90-character"
** group could be any number of bytes long).
*/
static int is_resource_group(azb_span sp) {
  size_t chars = 0, i = 0;
  if (sp.n == 0 || sp.p[sp.n - 1] == '.')
    return 0;
  while (i < sp.n) {
    unsigned char c = (unsigned char)sp.p[i];
    size_t n = 1;
    if (c >= 0x80) {
      n = azb_utf8_seq((const unsigned char *)sp.p + i, sp.n - i);
      if (n == 0)
        return 0;
    }
    else if (!azb_isalnum(c) && strchr("_-.()", c) == NULL)
      return 0;
    chars++;
    i += n;
  }
  return chars >= 1 && chars <= 90;
}

/* Gallery: letters, digits, '.', '_'; not starting or ending with '.'. */
static int is_gallery(azb_span sp) {
  if (sp.n < 1 || sp.n > 80 || sp.p[0] == '.' || sp.p[sp.n - 1] == '.')
    return 0;
  for (size_t i = 0; i < sp.n; i++) {
    unsigned char c = (unsigned char)sp.p[i];
    if (!azb_isalnum(c) && c != '.' && c != '_')
      return 0;
  }
  return 1;
}

/*
** Image definitions and managed images: 1-80 of letters, digits, '_',
** '-', '.', starting with a letter or digit, ending with one or '_'.
*/
/* Letters, digits, '_', '-' and '.' only. */
static int is_name_chars(azb_span sp) {
  for (size_t i = 0; i < sp.n; i++) {
    unsigned char c = (unsigned char)sp.p[i];
    if (!azb_isalnum(c) && c != '_' && c != '-' && c != '.')
      return 0;
  }
  return 1;
}

static int is_image_name(azb_span sp) {
  if (sp.n < 1 || sp.n > 80 || !azb_isalnum((unsigned char)sp.p[0]))
    return 0;
  if (!azb_isalnum((unsigned char)sp.p[sp.n - 1]) && sp.p[sp.n - 1] != '_')
    return 0;
  return is_name_chars(sp);
}

/*
** Shared gallery unique names ("{subscriptionId}-{GALLERY}") and community
** public names ("{prefix}-{guid}") carry '-', unlike gallery names.
*/
static int is_unique_name(azb_span sp) {
  if (sp.n < 1 || sp.n > 160 || !azb_isalnum((unsigned char)sp.p[0]) ||
      !azb_isalnum((unsigned char)sp.p[sp.n - 1]))
    return 0;
  return is_name_chars(sp);
}

/* 'latest', or major.minor.patch: each up to 10 digits within int32 */
static int is_version(azb_span sp) {
  size_t i = 0;
  if (span_is(sp, "latest"))
    return 1;
  for (int part = 0; part < 3; part++) {
    unsigned long long val = 0;
    size_t start = i;
    if (part > 0) {
      if (i >= sp.n || sp.p[i] != '.')
        return 0;
      start = ++i;
    }
    while (i < sp.n && sp.p[i] >= '0' && sp.p[i] <= '9') {
      val = val * 10 + (unsigned)(sp.p[i] - '0');
      i++;
      if (i - start > 10)
        return 0;
    }
    if (i == start || val > 2147483647ULL)
      return 0;
  }
  return i == sp.n;
}

/* }====================================================== */


/*
** {======================================================
** The parser
** =======================================================
*/

typedef struct parser {
  azb_span seg[MAX_SEGS];
  int nseg;
  azb_span whole;
  azb_span *where;
} parser;

static const char *fail(parser *ps, const char *why, int segi) {
  *ps->where = (segi >= 0 && segi < ps->nseg) ? ps->seg[segi] : ps->whole;
  return why;
}

/* Optional "/versions/{v}" at 'at', then nothing more. */
static const char *tail_version(parser *ps, int at, azb_armid *out,
                                const char *kw, const char *expect_kw,
                                const char *incomplete, const char *extra) {
  if (ps->nseg == at)
    return NULL;
  if (!span_is(ps->seg[at], kw))
    return fail(ps, expect_kw, at);
  if (ps->nseg == at + 1)
    return fail(ps, incomplete, -1);
  if (!is_version(ps->seg[at + 1]))
    return fail(ps, BAD_VERSION, at + 1);
  if (ps->nseg > at + 2)
    return fail(ps, extra, at + 2);
  out->version = ps->seg[at + 1];
  return NULL;
}

static const char *parse_subscription(parser *ps, azb_armid *out) {
  const char *err;
  int n = ps->nseg;
  /* fixed prefix: subscriptions/{guid}/resourceGroups/{rg}/providers/{p} */
  for (int i = 1; i < 7; i++) {
    if (i >= n)
      return fail(ps, INCOMPLETE_SUB, -1);
    switch (i) {
      case 1:
        if (!is_guid(ps->seg[1]))
          return fail(ps, "subscription id must be a GUID", 1);
        break;
      case 2:
        if (!span_is(ps->seg[2], "resourceGroups"))
          return fail(ps, "expected 'resourceGroups' after the subscription "
                          "id", 2);
        break;
      case 3:
        if (!is_resource_group(ps->seg[3]))
          return fail(ps, "resource group name must be 1-90 letters, digits, "
                          "'_', '-', '.', '(' or ')', not ending in '.'", 3);
        break;
      case 4:
        if (!span_is(ps->seg[4], "providers"))
          return fail(ps, "expected 'providers' after the resource group "
                          "name", 4);
        break;
      case 5:
        if (!span_is(ps->seg[5], "Microsoft.Compute"))
          return fail(ps, "provider must be Microsoft.Compute", 5);
        break;
      case 6:
        if (!span_is(ps->seg[6], "galleries") && !span_is(ps->seg[6], "images"))
          return fail(ps, "expected 'galleries' or 'images' after "
                          "providers/Microsoft.Compute", 6);
        break;
    }
  }
  if (n < 8)
    return fail(ps, INCOMPLETE_SUB, -1);
  out->subscription = ps->seg[1];
  out->resource_group = ps->seg[3];
  if (span_is(ps->seg[6], "images")) {
    if (!is_image_name(ps->seg[7]))
      return fail(ps, "image name must be 1-80 letters, digits, '_', '-' or "
                      "'.', starting with a letter or digit and ending with "
                      "a letter, digit or '_'", 7);
    if (n > 8)
      return fail(ps, "unexpected segment after images/{name}", 8);
    out->name = ps->seg[7];
    out->kind = AZB_ARM_MANAGED_IMAGE;
    return NULL;
  }
  if (!is_gallery(ps->seg[7]))
    return fail(ps, "gallery name must be 1-80 letters, digits, '.' or '_', "
                    "not starting or ending with '.'", 7);
  if (n < 9)
    return fail(ps, INCOMPLETE_SUB, -1);
  if (!span_is(ps->seg[8], "images"))
    return fail(ps, "expected 'images' after galleries/{gallery}", 8);
  if (n < 10)
    return fail(ps, INCOMPLETE_SUB, -1);
  if (!is_image_name(ps->seg[9]))
    return fail(ps, BAD_IMAGE, 9);
  out->gallery = ps->seg[7];
  out->image = ps->seg[9];
  err = tail_version(ps, 10, out, "versions",
                     "expected 'versions' after images/{image}",
                     INCOMPLETE_SUB,
                     "unexpected segment after versions/{version}");
  if (err != NULL)
    return err;
  out->kind = out->version.p != NULL ? AZB_ARM_GALLERY_VERSION
                                     : AZB_ARM_GALLERY_IMAGE;
  return NULL;
}

/* /SharedGalleries/{uniq}/Images/{i}[/Versions/{v}], and community alike */
static const char *parse_direct(parser *ps, azb_armid *out, int community) {
  const char *incomplete = community ? INCOMPLETE_COMMUNITY : INCOMPLETE_SHARED;
  const char *err;
  int n = ps->nseg;
  if (n < 2)
    return fail(ps, incomplete, -1);
  if (!is_unique_name(ps->seg[1]))
    return fail(ps, community
      ? "community gallery public name must be 1-160 letters, digits, '_', "
        "'-' or '.', starting and ending with a letter or digit"
      : "shared gallery unique name must be 1-160 letters, digits, '_', "
        "'-' or '.', starting and ending with a letter or digit", 1);
  if (n < 3)
    return fail(ps, incomplete, -1);
  if (!span_is(ps->seg[2], "Images"))
    return fail(ps, community ? "expected 'Images' after "
                                "CommunityGalleries/{publicName}"
                              : "expected 'Images' after "
                                "SharedGalleries/{galleryUniqueName}", 2);
  if (n < 4)
    return fail(ps, incomplete, -1);
  if (!is_image_name(ps->seg[3]))
    return fail(ps, BAD_IMAGE, 3);
  out->gallery = ps->seg[1];
  out->image = ps->seg[3];
  err = tail_version(ps, 4, out, "Versions",
                     "expected 'Versions' after Images/{image}", incomplete,
                     "unexpected segment after Versions/{version}");
  if (err != NULL)
    return err;
  out->kind = community ? AZB_ARM_COMMUNITY_GALLERY : AZB_ARM_SHARED_GALLERY;
  return NULL;
}

/*
** Like azb_armid_parse; on failure '*where' is the offending segment, or
** the whole input when the shape itself is wrong. Segment keywords match
** in any case, as ARM matches them.
*/
const char *azb_armid_parse_ex(const char *s, size_t len, azb_armid *out,
                               azb_span *where) {
  parser ps;
  const char *err;
  size_t i, start;
  memset(out, 0, sizeof *out);
  ps.nseg = 0;
  ps.whole.p = s;
  ps.whole.n = len;
  ps.where = where;
  where->p = s;
  where->n = len;
  if (len == 0)
    return fail(&ps, "resource id is empty", -1);
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c <= ' ' || c == 0x7f || c == '?' || c == '#')
      return fail(&ps, "resource id must not contain whitespace, control "
                       "characters, '?' or '#'", -1);
  }
  if (s[0] != '/')
    return fail(&ps, TEMPLATE, -1);
  /* split "/a/b/c" into segments; any empty one is an error */
  for (i = 1, start = 1; i <= len; i++) {
    if (i == len || s[i] == '/') {
      if (i == start)
        return fail(&ps, "empty segment in resource id (doubled or trailing "
                         "'/')", -1);
      if (ps.nseg == MAX_SEGS)
        return fail(&ps, "resource id has too many segments for an image "
                         "id", -1);
      ps.seg[ps.nseg].p = s + start;
      ps.seg[ps.nseg].n = i - start;
      ps.nseg++;
      start = i + 1;
    }
  }
  if (span_is(ps.seg[0], "subscriptions"))
    err = parse_subscription(&ps, out);
  else if (span_is(ps.seg[0], "SharedGalleries"))
    err = parse_direct(&ps, out, 0);
  else if (span_is(ps.seg[0], "CommunityGalleries"))
    err = parse_direct(&ps, out, 1);
  else
    err = fail(&ps, TEMPLATE, -1);
  if (err != NULL)   /* no half-filled result */
    memset(out, 0, sizeof *out);
  return err;
}

const char *azb_armid_parse(const char *s, size_t len, azb_armid *out) {
  azb_span where;
  return azb_armid_parse_ex(s, len, out, &where);
}

/* }====================================================== */
