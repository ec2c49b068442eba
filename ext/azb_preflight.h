/*
** azb_preflight.h: the preflight area (internal). The facts as C structs,
** the names shared by its files, and what each file gives the others:
**   azb_pfparse.c   pure parsers: spans, ids, regions, versions, dates,
**                   autoscale formulas (no Lua)
**   azb_pffacts.c   the facts, read from Lua into a 'pf', and what they
**                   say together (the pool's agent, the image's OS)
**   azb_pfemit.c    findings: quoting facts, emitting, CHECK_SKIPPED
**   azb_pfimage.c   the image rules (kind, access, region, replicas)
**   azb_pfagent.c   the node agent rules and end of life
**   azb_pfsize.c    the VM size and pool size rules (generation, quota)
**   azb_preflight.c core.preflight: reads, asks the chooser, runs the
**                   rules in order, pushes the findings
** Dependencies run one way: core.preflight -> rules -> findings and
** facts -> parsers; nothing calls back up.
*/
#ifndef AZB_PREFLIGHT_H
#define AZB_PREFLIGHT_H

#include "azb.h"

/* Pool fields the findings name. */
#define VMCONF        "pool.virtualMachineConfiguration"
#define F_IMAGEREF    VMCONF ".imageReference"
#define F_VMID        F_IMAGEREF ".virtualMachineImageId"
#define F_SHARED      F_IMAGEREF ".sharedGalleryImageId"
#define F_COMMUNITY   F_IMAGEREF ".communityGalleryImageId"
#define F_IMAGEURIS   VMCONF ".osDisk.imageUris"
#define F_AGENT       VMCONF ".nodeAgentSKUId"
#define F_RESIZE      "pool.resizeTimeout"
#define F_FORMULA     "pool.autoScaleFormula"
#define F_VMSIZE      "pool.vmSize"

#define DAY             86400.0
#define COUNT_MAX       2147483647LL   /* int32, the REST counts */
#define REGIONS_SHOWN   6
#define NAMES_SHOWN     4

enum { SEV_ERROR, SEV_WARNING, SEV_INFO, NSEV };

enum { OS_UNKNOWN, OS_LINUX, OS_WINDOWS };

/* Facts that may be unread, by their name in facts and facts.unread. */
enum { U_ACCOUNT, U_USAGE, U_DEF, U_VERSION, U_VERSIONS, U_MANAGED,
       U_VMSIZE, U_SUPPORTED, U_STORAGE, NFACTS };
extern const char *const azb_pf_fact_names[NFACTS];

/* Check groups a CHECK_SKIPPED finding names (one finding each). */
enum { G_SUBSCRIPTION, G_REGION, G_REPLICATION, G_REPLICAS, G_VERSION,
       G_LATEST, G_DEFINITION, G_MANAGED, G_MODE, G_AGENT, G_HYPERV,
       G_RESIZE, G_QUOTA, G_USAGE, G_EOL, G_STORAGE, NGROUPS };


/*
** {======================================================
** The facts, read into C
** =======================================================
*/

typedef struct unread {
  int present;          /* facts.unread[name] is there */
  long long status;     /* HTTP status, or 0 */
  azb_span code, message;
} unread;

/* A gallery image version, as far as the rules need it. */
typedef struct version {
  int present;
  azb_span name, id, eol;
  int exclude, failed;          /* excludeFromLatest; provisioningState */
  long long replica_count;      /* publishingProfile.replicaCount or -1 */
  int nregions;
  azb_span regions[REGIONS_SHOWN];
  int in_region;                /* a target region is the account's */
  long long region_replicas;    /* its regionalReplicaCount or -1 */
  int region_exclude;           /* its excludeFromLatest */
  int has_status;               /* replicationStatus was read */
  azb_span aggregated;
  int has_state;                /* a summary entry for the region */
  azb_span state, details;
  long long progress;           /* -1 when not given */
} version;

typedef struct pf {
  lua_State *L;
  double now;
  int shared_key;
  int kind;
  /* facts.image */
  int img_t;                    /* its stack index */
  azb_span img_id, img_sub, img_uri, img_version, img_name;
  int latest_id;                /* a '.../versions/latest' id */
  /* facts.pool */
  int autoscale;
  long long ded, low;
  azb_span formula, resize, vmsize, agent;
  int resize_given;
  int legacy_vhd;               /* osDisk.imageUris */
  azb_span vhd_uri;
  /* facts.account */
  int acct;
  azb_span acct_id, acct_name, acct_sub, acct_loc, acct_mode;
  long long q_ded, q_low, q_pools, q_fam;   /* -1: unknown */
  int fam_enforced;
  int modes_known, mode_shared, mode_aad;
  /* facts.usage */
  int usage;
  long long u_pools, u_ded, u_low, u_fam;
  /* facts.vm_size */
  int vs;
  azb_span vs_name, vs_family;
  long long vcpus;
  int gens_known, gen_v1, gen_v2;
  /* facts.image_definition and facts.managed_image */
  int def;
  azb_span def_name, def_id, def_os, def_state, def_gen, def_eol;
  int mi;
  azb_span mi_id, mi_name, mi_loc, mi_os, mi_state, mi_gen;
  /* facts.image_versions: "latest" */
  int versions, nversions, nexcluded, nfailed, nother;
  azb_span excluded[NAMES_SHOWN];
  azb_span latest;
  /* the version the region rules judge */
  version ver;
  /* facts.supported_images, for the agent the pool ends up with */
  int si_t;                     /* its stack index, or 0 */
  int si;
  int agent_listed, agent_os;
  int agent_eol_known;
  double agent_eol;
  int market_listed, market_os;
  azb_span market_eol;
  /* facts.storage_account */
  int sa;
  azb_span sa_id, sa_loc;
  unread un[NFACTS];
  /* the chooser's answer (stack indices; 0 when it was not asked) */
  int chose, chosen, reason;
  azb_span chosen_sku;
  /* output */
  int list[NSEV];
  int mark;
  unsigned skipped;
  long long nodes, replicas_needed;
} pf;

/* }====================================================== */


/* Pure parsers (azb_pfparse.c). Spans compare ignoring ASCII case. */
int azb_pf_span_ieq(azb_span a, azb_span b);
int azb_pf_span_is(azb_span a, const char *s);
int azb_pf_span_ends(azb_span a, const char *suffix);
int azb_pf_region_eq(azb_span a, azb_span b);
azb_span azb_pf_id_subscription(azb_span id);
azb_span azb_pf_last_segment(azb_span id);
int azb_pf_parse_semver(azb_span s, long long v[3]);
int azb_pf_semver_cmp(const long long a[3], const long long b[3]);
int azb_pf_parse_time(azb_span s, double *t);
void azb_pf_format_date(double t, char *out);
int azb_pf_number_literal(const char *p, size_t n, double *v);
int azb_pf_isident(int c);
void azb_pf_trim(const char **p, size_t *n);
int azb_pf_formula_bound(const char *p, size_t n, const char *var,
                         double *bound);
long long azb_pf_bound_nodes(double v);

/*
** Reading (azb_pffacts.c). azb_pf_read reads facts (stack index 1) into
** c and raises on misuse; azb_pf_read_supported reads the supported
** images once the chooser has answered. Strings stay anchored on the
** stack.
*/
void azb_pf_read(pf *c);
void azb_pf_read_supported(pf *c);
/* What the facts say together. */
azb_span azb_pf_pool_agent(const pf *c);
int azb_pf_image_os(const pf *c);
const char *azb_pf_image_generation(const pf *c);
int azb_pf_vmsize_usable(const pf *c);

/* Findings (azb_pfemit.c). */
const char *azb_pf_q(pf *c, azb_span s);
const char *azb_pf_qid(pf *c, azb_span s);
void azb_pf_begin(pf *c);
void azb_pf_emit(pf *c, int sev, const char *code, const char *field,
                 const char *msg, const char *fix);
void azb_pf_skip(pf *c, int g, const char *field, int f, const char *why);
void azb_pf_skip_for(pf *c, int g, const char *field, const char *fmt, ...);
const char *azb_pf_image_field(const pf *c);
int azb_pf_is_gallery(const pf *c);
azb_span azb_pf_definition_id(const pf *c);
const char *azb_pf_push_version_id(pf *c);

/* The rules, in the order core.preflight runs them. */
void azb_pf_rule_kind(pf *c);                 /* azb_pfimage.c */
void azb_pf_rule_vhd(pf *c);
void azb_pf_rule_credential(pf *c);
void azb_pf_rule_access(pf *c);
void azb_pf_rule_subscription(pf *c);
void azb_pf_rule_size(pf *c, long long *bd, long long *bl);   /* azb_pfsize.c */
void azb_pf_rule_latest(pf *c);               /* azb_pfimage.c */
void azb_pf_rule_region(pf *c);
void azb_pf_rule_definition(pf *c);
void azb_pf_rule_agent(pf *c);                /* azb_pfagent.c */
void azb_pf_rule_hyperv(pf *c);               /* azb_pfsize.c */
void azb_pf_rule_resize(pf *c);
void azb_pf_rule_quota(pf *c, long long ded, long long low);
void azb_pf_rule_eol(pf *c);                  /* azb_pfagent.c */

/* Push a duration in seconds as ISO-8601 ("PT15M") (azb_pfsize.c). */
const char *azb_pf_push_duration(lua_State *L, double seconds);

#endif
