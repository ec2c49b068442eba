/*
** fuzz_armid.c: libFuzzer target for azb_armid_parse (ext/azb_arm.c).
** Invariants: spans lie inside the input; a failure leaves no half-filled
** result; a success has the parts its kind needs and survives being
** rebuilt from its parts and parsed again.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "azb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what) {
  if (!ok) {
    fprintf(stderr, "invariant violated: %s\n", what);
    abort();
  }
}

static int inside(azb_span sp, const char *s, size_t n) {
  if (sp.p == NULL)
    return sp.n == 0;
  return sp.p >= s && sp.n <= n && (size_t)(sp.p - s) <= n - sp.n;
}

static int empty(azb_span sp) { return sp.p == NULL && sp.n == 0; }
static int filled(azb_span sp) { return sp.p != NULL && sp.n > 0; }

/* Rebuild the canonical id from the parsed parts. */
static int rebuild(const azb_armid *id, char *buf, size_t cap) {
#define S(sp) (int)(sp).n, (sp).p
  switch (id->kind) {
    case AZB_ARM_GALLERY_VERSION:
      return snprintf(buf, cap, "/subscriptions/%.*s/resourceGroups/%.*s/providers/"
                      "Microsoft.Compute/galleries/%.*s/images/%.*s/versions/%.*s",
                      S(id->subscription), S(id->resource_group), S(id->gallery),
                      S(id->image), S(id->version));
    case AZB_ARM_GALLERY_IMAGE:
      return snprintf(buf, cap, "/subscriptions/%.*s/resourceGroups/%.*s/providers/"
                      "Microsoft.Compute/galleries/%.*s/images/%.*s",
                      S(id->subscription), S(id->resource_group), S(id->gallery),
                      S(id->image));
    case AZB_ARM_MANAGED_IMAGE:
      return snprintf(buf, cap, "/subscriptions/%.*s/resourceGroups/%.*s/providers/"
                      "Microsoft.Compute/images/%.*s",
                      S(id->subscription), S(id->resource_group), S(id->name));
    case AZB_ARM_SHARED_GALLERY:
    case AZB_ARM_COMMUNITY_GALLERY: {
      const char *root = id->kind == AZB_ARM_SHARED_GALLERY ? "SharedGalleries"
                                                            : "CommunityGalleries";
      if (id->version.p != NULL)
        return snprintf(buf, cap, "/%s/%.*s/Images/%.*s/Versions/%.*s", root,
                        S(id->gallery), S(id->image), S(id->version));
      return snprintf(buf, cap, "/%s/%.*s/Images/%.*s", root, S(id->gallery),
                      S(id->image));
    }
    default:
      return -1;
  }
#undef S
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* an exact-size heap copy, so ASan sees any read past the end */
  char *s = malloc(size ? size : 1);
  azb_armid id, again;
  azb_span where;
  const char *why;
  if (s == NULL)
    return 0;
  memcpy(s, data, size);
  why = azb_armid_parse_ex(s, size, &id, &where);
  check(inside(where, s, size), "where lies inside the input");
  check(why == azb_armid_parse(s, size, &again), "same answer twice");
  check(memcmp(&id, &again, sizeof id) == 0, "same result twice");
  check(inside(id.subscription, s, size) && inside(id.resource_group, s, size) &&
        inside(id.gallery, s, size) && inside(id.image, s, size) &&
        inside(id.version, s, size) && inside(id.name, s, size),
        "spans lie inside the input");
  if (why != NULL) {
    check(why[0] != '\0', "a message says why");
    check(id.kind == AZB_ARM_NONE && empty(id.subscription) && empty(id.resource_group) &&
          empty(id.gallery) && empty(id.image) && empty(id.version) && empty(id.name),
          "a failure leaves the result empty");
  }
  else {
    char buf[1024];
    int n;
    check(size > 0 && s[0] == '/', "ids start with '/'");
    for (size_t i = 0; i < size; i++)
      check((unsigned char)s[i] > ' ' && s[i] != '?' && s[i] != '#' && s[i] != 0x7f,
            "no whitespace, control bytes, '?' or '#'");
    switch (id.kind) {
      case AZB_ARM_GALLERY_VERSION:
        check(filled(id.version), "gallery version has a version");
        /* fall through */
      case AZB_ARM_GALLERY_IMAGE:
        check(filled(id.subscription) && filled(id.resource_group) && filled(id.gallery) &&
              filled(id.image) && empty(id.name), "gallery parts");
        check(id.kind == AZB_ARM_GALLERY_VERSION || empty(id.version), "no version");
        break;
      case AZB_ARM_MANAGED_IMAGE:
        check(filled(id.subscription) && filled(id.resource_group) && filled(id.name) &&
              empty(id.gallery) && empty(id.image) && empty(id.version), "managed parts");
        break;
      case AZB_ARM_SHARED_GALLERY:
      case AZB_ARM_COMMUNITY_GALLERY:
        check(filled(id.gallery) && filled(id.image) && empty(id.subscription) &&
              empty(id.resource_group) && empty(id.name), "direct gallery parts");
        break;
      default:
        check(0, "a success has a kind");
    }
    n = rebuild(&id, buf, sizeof buf);
    check(n > 0 && (size_t)n < sizeof buf, "rebuilt id fits");
    check(azb_armid_parse(buf, (size_t)n, &again) == NULL && again.kind == id.kind,
          "a rebuilt id parses to the same kind");
    check((size_t)n == size, "the canonical id has the input's length");
  }
  free(s);
  return 0;
}
