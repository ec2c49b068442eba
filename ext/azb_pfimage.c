/*
** azb_pfimage.c: the preflight rules on the image: its kind (no VHD
** blobs, no '/versions/latest' ids), the credential it needs, whether
** the identity may read it, its subscription and region against the
** Batch account's, which version 'latest' means, its replicas and their
** replication, and whether it is generalized.
*/
#include "azb_preflight.h"


/*
** {======================================================
** The image rules, in the order their findings appear
** =======================================================
*/

/* A path or URL without its query (a SAS token is a secret). */
static azb_span no_query(azb_span s) {
  for (size_t i = 0; s.p != NULL && i < s.n; i++)
    if (s.p[i] == '?' || s.p[i] == '#') {
      s.n = i;
      break;
    }
  return s;
}

/* Push a managed image name made from a blob URL ("base.vhd" -> "base"). */
static const char *push_vhd_name(pf *c, azb_span url) {
  lua_State *L = c->L;
  azb_span base = azb_pf_last_segment(no_query(url));
  luaL_Buffer b;
  size_t n = 0;
  if (azb_pf_span_ends(base, ".vhd"))
    base.n -= 4;
  luaL_buffinit(L, &b);
  for (size_t i = 0; base.p != NULL && i < base.n && n < 80; i++) {
    int ch = (unsigned char)base.p[i];
    if (azb_isalnum(ch) || (n > 0 && (ch == '-' || ch == '_' || ch == '.'))) {
      luaL_addchar(&b, (char)ch);
      n++;
    }
  }
  if (n == 0)
    luaL_addstring(&b, "<name>");
  luaL_pushresult(&b);
  return lua_tostring(L, -1);
}

void azb_pf_rule_kind(pf *c) {
  lua_State *L = c->L;
  const char *msg, *fix;
  if (c->latest_id) {
    azb_span def = azb_pf_definition_id(c);
    azb_pf_begin(c);
    msg = lua_pushliteral(L, "an id ending in '/versions/latest' is not one "
                          "Batch takes; the image definition's id stands "
                          "for its latest version");
    if (def.p != NULL && def.n > 0)
      fix = lua_pushfstring(L, "set virtualMachineImageId to %s",
                            azb_pf_qid(c, def));
    else
      fix = lua_pushliteral(L, "name the image definition "
                            "('.../galleries/{gallery}/images/{definition}')");
    azb_pf_emit(c, SEV_ERROR, "IMAGE_LATEST_ID", F_VMID, msg, fix);
  }
  if (c->kind == K_VHD || c->legacy_vhd) {
    azb_span url = c->img_uri.p != NULL ? c->img_uri : c->vhd_uri;
    const char *name, *blob;
    azb_pf_begin(c);
    msg = lua_pushliteral(L, "Batch no longer creates pools from a VHD "
                          "blob; it takes a managed image or an Azure "
                          "Compute Gallery version made from the VHD");
    name = push_vhd_name(c, url);
    blob = url.p != NULL ? azb_pf_qid(c, no_query(url)) : "<url>";
    fix = lua_pushfstring(L, "make a managed image from the blob: azbatch "
                          "image from-vhd --blob %s --name %s, then name its "
                          "id in virtualMachineImageId", blob, name);
    azb_pf_emit(c, SEV_ERROR, "IMAGE_VHD", c->legacy_vhd ? F_IMAGEURIS :
                azb_pf_image_field(c), msg, fix);
  }
}

/* The old VHD flow's account and storage rules (warnings). */
void azb_pf_rule_vhd(pf *c) {
  lua_State *L = c->L;
  const char *field = c->legacy_vhd ? F_IMAGEURIS : azb_pf_image_field(c);
  const char *msg, *fix;
  if (c->kind != K_VHD && !c->legacy_vhd)
    return;
  if (!c->sa)
    azb_pf_skip(c, G_STORAGE, field, U_STORAGE, NULL);
  else if (!c->acct)
    azb_pf_skip(c, G_STORAGE, field, U_ACCOUNT, NULL);
  else {
    azb_span sasub = azb_pf_id_subscription(c->sa_id);
    if (sasub.p != NULL && c->acct_sub.p != NULL &&
        !azb_pf_span_ieq(sasub, c->acct_sub)) {
      azb_pf_begin(c);
      msg = lua_pushfstring(L, "the VHD's storage account is in subscription "
                            "%s, the Batch account in %s; the old VHD flow "
                            "needed them in one subscription",
                            azb_pf_q(c, sasub),
                            azb_pf_q(c, c->acct_sub));
      fix = lua_pushfstring(L, "copy the blob to a storage account in "
                            "subscription %s before azbatch image from-vhd",
                            azb_pf_q(c, c->acct_sub));
      azb_pf_emit(c, SEV_WARNING, "VHD_STORAGE_SUBSCRIPTION", field, msg, fix);
    }
    if (c->sa_loc.p != NULL && c->acct_loc.p != NULL &&
        !azb_pf_region_eq(c->sa_loc, c->acct_loc)) {
      azb_pf_begin(c);
      msg = lua_pushfstring(L, "the VHD's storage account is in %s, the "
                            "Batch account in %s; a managed image is made "
                            "in its blob's region and Batch needs it in the "
                            "account's", azb_pf_q(c, c->sa_loc),
                            azb_pf_q(c, c->acct_loc));
      fix = lua_pushfstring(L, "copy the blob to a storage account in %s "
                            "before azbatch image from-vhd",
                            azb_pf_q(c, c->acct_loc));
      azb_pf_emit(c, SEV_WARNING, "VHD_STORAGE_REGION", field, msg, fix);
    }
  }
  if (!c->acct)
    azb_pf_skip(c, G_MODE, NULL, U_ACCOUNT, NULL);
  else if (c->acct_mode.p != NULL &&
           !azb_pf_span_is(c->acct_mode, "UserSubscription")) {
    azb_pf_begin(c);
    msg = lua_pushfstring(L, "the old VHD flow needed a Batch account in "
                          "UserSubscription pool allocation mode; %s is in "
                          "%s mode", azb_pf_q(c, c->acct_name),
                          azb_pf_q(c, c->acct_mode));
    fix = lua_pushliteral(L, "use a managed image or gallery version made "
                          "from the VHD instead: they work in either mode");
    azb_pf_emit(c, SEV_WARNING, "VHD_ACCOUNT_MODE", NULL, msg, fix);
  }
}

static const char ENTRA_FIX[] =
  "authenticate with Microsoft Entra ID: unset AZURE_BATCH_ACCESS_KEY and "
  "set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or use a "
  "managed identity)";

void azb_pf_rule_credential(pf *c) {
  lua_State *L = c->L;
  const char *msg;
  if (c->shared_key && (azb_pf_is_gallery(c) || c->kind == K_MANAGED)) {
    azb_pf_begin(c);
    msg = lua_pushfstring(L, "Shared Key cannot create a pool from a %s "
                          "image; the service answers \"The specified type "
                          "of authentication SharedKey is not allowed when "
                          "external resources of type Compute are linked.\"",
                          c->kind == K_MANAGED ? "managed" : "gallery");
    azb_pf_emit(c, SEV_ERROR, "AUTH_SHARED_KEY_REFUSED", azb_pf_image_field(c),
                msg, ENTRA_FIX);
  }
  if (c->shared_key) {
    if (!c->acct)
      azb_pf_skip(c, G_MODE, NULL, U_ACCOUNT, NULL);
    else if (azb_pf_span_is(c->acct_mode, "UserSubscription")) {
      azb_pf_begin(c);
      msg = lua_pushfstring(L, "the Batch account %s is in UserSubscription "
                            "pool allocation mode, where clients must use "
                            "Microsoft Entra ID, not Shared Key",
                            azb_pf_q(c, c->acct_name));
      azb_pf_emit(c, SEV_ERROR, "AUTH_USER_SUBSCRIPTION", NULL, msg, ENTRA_FIX);
    }
  }
  if (c->modes_known && (c->shared_key ? !c->mode_shared : !c->mode_aad)) {
    azb_pf_begin(c);
    msg = lua_pushfstring(L, "the Batch account %s does not allow %s "
                          "authentication (allowedAuthenticationModes)",
                          azb_pf_q(c, c->acct_name),
                          c->shared_key ? "SharedKey" : "AAD");
    azb_pf_emit(c, SEV_ERROR, "AUTH_MODE_NOT_ALLOWED", NULL, msg,
                c->shared_key ? ENTRA_FIX : "add AAD to the account's "
                "allowedAuthenticationModes, or use its Shared Key");
  }
}

/* The facts the image kind's rules read. */
static int needs_fact(const pf *c, int f) {
  switch (f) {
    case U_DEF: return azb_pf_is_gallery(c);
    case U_VERSION: return c->kind == K_GVERSION;
    case U_VERSIONS: return c->kind == K_GLATEST;
    case U_MANAGED: return c->kind == K_MANAGED;
    default: return 0;
  }
}

static int have_fact(const pf *c, int f) {
  switch (f) {
    case U_DEF: return c->def;
    case U_VERSION: return c->ver.present;
    case U_VERSIONS: return c->versions;
    case U_MANAGED: return c->mi;
    default: return 0;
  }
}

static int unread_with(const pf *c, int f, long long status) {
  return needs_fact(c, f) && !have_fact(c, f) && c->un[f].present &&
         c->un[f].status == status;
}

void azb_pf_rule_access(pf *c) {
  lua_State *L = c->L;
  const char *msg;
  int d_def = unread_with(c, U_DEF, 403),
      d_ver = unread_with(c, U_VERSION, 403),
      d_list = unread_with(c, U_VERSIONS, 403),
      d_mi = unread_with(c, U_MANAGED, 403);
  if (d_def || d_ver || d_list || d_mi) {
    azb_pf_begin(c);
    msg = lua_pushfstring(L, "reading the %s was refused (HTTP 403); the "
                          "identity that creates the pool needs the same "
                          "reads, or Batch refuses the pool with "
                          "LinkedAuthorizationFailed",
                          d_mi ? "managed image" : d_ver ? "image version" :
                          d_list ? "image's versions" : "image definition");
    azb_pf_emit(c, SEV_ERROR, "IMAGE_ACCESS_DENIED", azb_pf_image_field(c), msg,
                d_mi ?
                "grant the identity that creates the pool "
                "Microsoft.Compute/images/read on the managed image (the "
                "Reader role has it)" :
                "grant the identity that creates the pool "
                "Microsoft.Compute/galleries/read, "
                "Microsoft.Compute/galleries/images/read and "
                "Microsoft.Compute/galleries/images/versions/read on the "
                "gallery (the Reader role has them)");
  }
  if (unread_with(c, U_DEF, 404)) {
    azb_pf_begin(c);
    msg = lua_pushfstring(L, "the image definition %s does not exist "
                          "(HTTP 404)", azb_pf_q(c, azb_pf_definition_id(c)));
    azb_pf_emit(c, SEV_ERROR, "IMAGE_DEFINITION_NOT_FOUND", F_VMID, msg,
                "check the gallery and definition names in the id");
  }
  else if (unread_with(c, U_VERSION, 404)) {
    azb_pf_begin(c);
    msg = lua_pushfstring(L, "the image version %s does not exist "
                          "(HTTP 404)", azb_pf_q(c, c->img_id));
    azb_pf_emit(c, SEV_ERROR, "IMAGE_VERSION_NOT_FOUND", F_VMID, msg,
                "check the version in the id; the image definition's id stands "
                "for its latest version");
  }
  if (unread_with(c, U_MANAGED, 404)) {
    azb_pf_begin(c);
    msg = lua_pushfstring(L, "the managed image %s does not exist "
                          "(HTTP 404)", azb_pf_q(c, c->img_id));
    azb_pf_emit(c, SEV_ERROR, "MANAGED_IMAGE_NOT_FOUND", F_VMID, msg,
                "check the id, or make the image: azbatch image from-vhd "
                "--blob <url> --name <name>");
  }
}

void azb_pf_rule_subscription(pf *c) {
  lua_State *L = c->L;
  const char *msg, *fix;
  if (!azb_pf_is_gallery(c) && c->kind != K_MANAGED)
    return;
  if (!c->acct)
    azb_pf_skip(c, G_SUBSCRIPTION, F_VMID, U_ACCOUNT, NULL);
  else if (c->acct_sub.p == NULL)
    azb_pf_skip_for(c, G_SUBSCRIPTION, F_VMID,
                    "the Batch account's id names no subscription");
  else if (c->img_sub.p == NULL)
    azb_pf_skip_for(c, G_SUBSCRIPTION, F_VMID, "the image's subscription is "
                    "unknown");
  else if (!azb_pf_span_ieq(c->acct_sub, c->img_sub)) {
    azb_pf_begin(c);
    msg = lua_pushfstring(L, "the image is in subscription %s, the Batch "
                          "account %s in %s; Batch needs the %s in the "
                          "account's subscription", azb_pf_q(c, c->img_sub),
                          azb_pf_q(c, c->acct_name), azb_pf_q(c, c->acct_sub),
                          c->kind == K_MANAGED ? "managed image" : "gallery");
    fix = lua_pushfstring(L, "publish the image to a gallery in subscription "
                          "%s (or use a Batch account of subscription %s)",
                          azb_pf_q(c, c->acct_sub), azb_pf_q(c, c->img_sub));
    azb_pf_emit(c, SEV_ERROR, "IMAGE_SUBSCRIPTION", F_VMID, msg, fix);
  }
}

void azb_pf_rule_latest(pf *c) {
  lua_State *L = c->L;
  luaL_Buffer b;
  const char *msg, *fix;
  if (c->kind != K_GLATEST || unread_with(c, U_DEF, 404) ||
      unread_with(c, U_VERSIONS, 403))
    return;
  if (!c->versions) {
    azb_pf_skip(c, G_LATEST, F_VMID, U_VERSIONS, NULL);
    return;
  }
  azb_pf_begin(c);
  luaL_buffinit(L, &b);
  if (c->latest.p == NULL) {
    lua_pushfstring(L, "no version of the image definition can be 'latest': "
                    "%d version(s)", c->nversions);
    luaL_addvalue(&b);
    if (c->nexcluded > 0) {
      lua_pushfstring(L, ", %d excluded from latest", c->nexcluded);
      luaL_addvalue(&b);
    }
    if (c->nfailed > 0) {
      lua_pushfstring(L, ", %d failed", c->nfailed);
      luaL_addvalue(&b);
    }
    if (c->nother > 0) {
      lua_pushfstring(L, ", %d not named major.minor.patch", c->nother);
      luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    azb_pf_emit(c, SEV_ERROR, "IMAGE_LATEST_NONE", F_VMID, lua_tostring(L, -1),
                "publish a version that is not excluded from latest, or name a "
                "version id ('.../versions/{version}')");
    return;
  }
  lua_pushfstring(L, "'latest' resolves to version %s, the highest of %d "
                  "version%s", azb_pf_q(c, c->latest), c->nversions,
                  c->nversions == 1 ? "" : "s");
  lua_remove(L, -2);
  luaL_addvalue(&b);
  if (c->nexcluded > 0) {
    luaL_addstring(&b, "; excluded from latest: ");
    for (int i = 0; i < c->nexcluded && i < NAMES_SHOWN; i++) {
      if (i > 0)
        luaL_addstring(&b, ", ");
      azb_pf_q(c, c->excluded[i]);
      luaL_addvalue(&b);
    }
    if (c->nexcluded > NAMES_SHOWN) {
      lua_pushfstring(L, " (and %d more)", c->nexcluded - NAMES_SHOWN);
      luaL_addvalue(&b);
    }
  }
  if (c->nfailed > 0) {
    lua_pushfstring(L, "; %d failed", c->nfailed);
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  msg = lua_tostring(L, -1);
  fix = lua_pushfstring(L, "to pin it, set virtualMachineImageId to %s",
                        azb_pf_push_version_id(c));
  azb_pf_emit(c, SEV_INFO, "IMAGE_LATEST_RESOLVED", F_VMID, msg, fix);
}

/* Push "'a', 'b' (and N more)" naming the version's target regions. */
static const char *push_regions(pf *c) {
  lua_State *L = c->L;
  luaL_Buffer b;
  const version *v = &c->ver;
  luaL_buffinit(L, &b);
  if (v->nregions == 0)
    luaL_addstring(&b, "none");
  for (int i = 0; i < v->nregions && i < REGIONS_SHOWN; i++) {
    if (i > 0)
      luaL_addstring(&b, ", ");
    azb_pf_q(c, v->regions[i]);
    luaL_addvalue(&b);
  }
  if (v->nregions > REGIONS_SHOWN) {
    lua_pushfstring(L, " (and %d more)", v->nregions - REGIONS_SHOWN);
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  return lua_tostring(L, -1);
}

static void rule_managed_region(pf *c) {
  lua_State *L = c->L;
  const char *msg, *fix;
  if (!c->acct)
    azb_pf_skip(c, G_REGION, F_VMID, U_ACCOUNT, NULL);
  else if (c->acct_loc.p == NULL || c->mi_loc.p == NULL)
    azb_pf_skip_for(c, G_REGION, F_VMID, "the %s location is unknown",
                    c->acct_loc.p == NULL ? "Batch account's" :
                    "managed image's");
  else if (!azb_pf_region_eq(c->acct_loc, c->mi_loc)) {
    azb_pf_begin(c);
    msg = lua_pushfstring(L, "the managed image %s is in %s, the Batch "
                          "account in %s; Batch needs it in the account's "
                          "region", azb_pf_q(c, c->mi_name),
                          azb_pf_q(c, c->mi_loc),
                          azb_pf_q(c, c->acct_loc));
    fix = lua_pushfstring(L, "make the managed image in %s, or publish it to "
                          "a gallery version replicated there",
                          azb_pf_q(c, c->acct_loc));
    azb_pf_emit(c, SEV_ERROR, "MANAGED_IMAGE_REGION", F_VMID, msg, fix);
  }
}

static void rule_replication(pf *c) {
  lua_State *L = c->L;
  const version *v = &c->ver;
  azb_span st = v->has_state ? v->state : v->aggregated;
  const char *msg, *fix;
  if (!v->has_status) {
    azb_pf_skip_for(c, G_REPLICATION, F_VMID, "version %s was read without its "
                    "replicationStatus (GET with $expand=ReplicationStatus)",
                    azb_pf_q(c, v->name));
    return;
  }
  azb_pf_begin(c);
  if (azb_pf_span_is(st, "Replicating") || azb_pf_span_is(st, "InProgress")) {
    if (v->progress >= 0)
      msg = lua_pushfstring(L, "version %s is still replicating to %s "
                            "(%d%%); pools cannot use it there until it "
                            "completes", azb_pf_q(c, v->name),
                            azb_pf_q(c, c->acct_loc),
                            (int)v->progress);
    else
      msg = lua_pushfstring(L, "version %s is still replicating to %s; "
                            "pools cannot use it there until it completes",
                            azb_pf_q(c, v->name), azb_pf_q(c, c->acct_loc));
    azb_pf_emit(c, SEV_ERROR, "IMAGE_REPLICATION_INCOMPLETE", F_VMID, msg,
                "wait for the replication to complete, then run preflight "
                "again");
  }
  else if (azb_pf_span_is(st, "Failed")) {
    if (v->has_state && v->details.n > 0)
      msg = lua_pushfstring(L, "replication of version %s to %s failed: %s",
                            azb_pf_q(c, v->name), azb_pf_q(c, c->acct_loc),
                            azb_pf_q(c, v->details));
    else
      msg = lua_pushfstring(L, "replication of version %s to %s failed",
                            azb_pf_q(c, v->name), azb_pf_q(c, c->acct_loc));
    fix = lua_pushfstring(L, "replicate it again: azbatch image replicate "
                          "--image %s --nodes %I", azb_pf_push_version_id(c),
                          (LUAI_UACINT)c->nodes);
    azb_pf_emit(c, SEV_ERROR, "IMAGE_REPLICATION_INCOMPLETE", F_VMID, msg, fix);
  }
  else if (!azb_pf_span_is(st, "Completed")) {
    msg = lua_pushfstring(L, "the replication state of version %s in %s is "
                          "%s; pools may not find it there",
                          azb_pf_q(c, v->name),
                          azb_pf_q(c, c->acct_loc),
                          st.p != NULL ? azb_pf_q(c, st) :
                          "not reported");
    azb_pf_emit(c, SEV_WARNING, "IMAGE_REPLICATION_UNKNOWN", F_VMID, msg,
                "read the version again with $expand=ReplicationStatus and run "
                "preflight again");
  }
  else
    lua_settop(L, c->mark);
}

void azb_pf_rule_region(pf *c) {
  lua_State *L = c->L;
  const version *v = &c->ver;
  const char *msg, *fix;
  long long have;
  if (c->kind == K_MANAGED) {
    if (c->mi)
      rule_managed_region(c);
    return;
  }
  if (!azb_pf_is_gallery(c))
    return;
  if (!v->present) {
    if (c->kind == K_GVERSION && !unread_with(c, U_VERSION, 404) &&
        !unread_with(c, U_DEF, 404))
      azb_pf_skip(c, G_VERSION, F_VMID, U_VERSION, NULL);
    return;   /* latest: rule_latest said why */
  }
  if (!c->acct) {
    azb_pf_skip(c, G_REGION, F_VMID, U_ACCOUNT, NULL);
    return;
  }
  if (c->acct_loc.p == NULL) {
    azb_pf_skip_for(c, G_REGION, F_VMID,
                    "the Batch account's location is unknown");
    return;
  }
  if (!v->in_region) {
    azb_pf_begin(c);
    msg = lua_pushfstring(L, "version %s has no replica in %s, the Batch "
                          "account's region; its target regions: %s",
                          azb_pf_q(c, v->name), azb_pf_q(c, c->acct_loc),
                          push_regions(c));
    fix = lua_pushfstring(L, "replicate it to %s: azbatch image replicate "
                          "--image %s --nodes %I", azb_pf_q(c, c->acct_loc),
                          azb_pf_push_version_id(c), (LUAI_UACINT)c->nodes);
    azb_pf_emit(c, SEV_ERROR, "IMAGE_NO_REPLICA_IN_REGION", F_VMID, msg, fix);
    return;
  }
  rule_replication(c);
  /* one replica per 600 nodes there */
  have = v->region_replicas >= 0 ? v->region_replicas :
         v->replica_count >= 0 ? v->replica_count : 1;
  if (have < c->replicas_needed) {
    azb_pf_begin(c);
    msg = lua_pushfstring(L, "version %s has %I replica%s in %s; a pool of "
                          "%s%I nodes needs %I (one per 600 nodes)",
                          azb_pf_q(c, v->name), (LUAI_UACINT)have,
                          have == 1 ? "" : "s", azb_pf_q(c, c->acct_loc),
                          c->autoscale ? "up to " : "",
                          (LUAI_UACINT)c->nodes,
                          (LUAI_UACINT)c->replicas_needed);
    fix = lua_pushfstring(L, "azbatch image replicate --image %s --nodes %I",
                          azb_pf_push_version_id(c), (LUAI_UACINT)c->nodes);
    azb_pf_emit(c, SEV_WARNING, "IMAGE_REPLICAS_TOO_FEW", F_VMID, msg, fix);
  }
}

void azb_pf_rule_definition(pf *c) {
  lua_State *L = c->L;
  int managed = c->kind == K_MANAGED;
  int optional = c->kind == K_SHARED || c->kind == K_COMMUNITY;
  azb_span state = managed ? c->mi_state : c->def_state;
  const char *msg;
  if (c->kind == K_MARKET || c->kind == K_VHD)
    return;
  if (!(managed ? c->mi : c->def)) {
    int f = managed ? U_MANAGED : U_DEF;
    if ((!optional || c->un[f].present) && !unread_with(c, f, 404) &&
        !unread_with(c, U_VERSION, 404))
      azb_pf_skip(c, managed ? G_MANAGED : G_DEFINITION, azb_pf_image_field(c),
                  f, NULL);
    return;
  }
  if (azb_pf_span_is(state, "Specialized")) {
    azb_pf_begin(c);
    msg = lua_pushfstring(L, "the %s %s is Specialized; Batch makes nodes "
                          "only from Generalized images", managed ?
                          "managed image" : "image definition",
                          azb_pf_q(c, managed ? c->mi_name : c->def_name));
    azb_pf_emit(c, SEV_ERROR, "IMAGE_NOT_GENERALIZED", azb_pf_image_field(c),
                msg, "generalize the source VM (Sysprep on Windows, waagent "
                "-deprovision+user on Linux) and publish it to a definition "
                "whose osState is Generalized");
  }
}

/* }====================================================== */
