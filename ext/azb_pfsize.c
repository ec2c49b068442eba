/*
** azb_pfsize.c: the preflight rules on sizes: the VM size's Hyper-V
** generations against the image's, the most nodes an autoscale formula
** can reach, the resize timeout for the node count, and the account's
** pool and core quotas.
*/
#include "azb_preflight.h"

#define DEFAULT_RESIZE  900.0          /* the service's PT15M */


/*
** {======================================================
** The VM size and the node count
** =======================================================
*/

static void skip_vmsize(pf *c, int g) {
  if (c->vs)
    azb_pf_skip_for(c, g, F_VMSIZE,
                    "facts.vm_size describes %s, not the pool's %s",
                    azb_pf_q(c, c->vs_name), azb_pf_q(c, c->vmsize));
  else
    azb_pf_skip(c, g, F_VMSIZE, U_VMSIZE, NULL);
}

static azb_span size_name(const pf *c) {
  return c->vs_name.p != NULL ? c->vs_name : c->vmsize;
}

void azb_pf_rule_hyperv(pf *c) {
  lua_State *L = c->L;
  const char *gen = azb_pf_image_generation(c), *msg, *fix;
  if (gen == NULL)
    return;   /* marketplace images and definitions that do not say */
  if (!azb_pf_vmsize_usable(c)) {
    skip_vmsize(c, G_HYPERV);
    return;
  }
  if (!c->gens_known) {
    azb_pf_skip_for(c, G_HYPERV, F_VMSIZE,
                    "facts.vm_size has no HyperVGenerations capability");
    return;
  }
  if ((gen[1] == '1' && !c->gen_v1) || (gen[1] == '2' && !c->gen_v2)) {
    azb_pf_begin(c);
    msg = lua_pushfstring(L, "the image is Hyper-V generation %s but the VM "
                          "size %s runs only %s", gen,
                          azb_pf_q(c, size_name(c)),
                          c->gen_v1 ? "V1" : c->gen_v2 ? "V2" : "neither");
    fix = lua_pushfstring(L, "choose a VM size that supports %s, or an image "
                          "of generation %s", gen, gen[1] == '1' ? "V2" :
                          "V1");
    azb_pf_emit(c, SEV_ERROR, "HYPERV_GENERATION", F_VMSIZE, msg, fix);
  }
}

const char *azb_pf_push_duration(lua_State *L, double seconds) {
  char buf[64];
  azb_duration_format(seconds, buf, sizeof buf);
  return lua_pushstring(L, buf);
}

/* The pool's size for the rules: targets, or what autoscale can reach. */
void azb_pf_rule_size(pf *c, long long *bd, long long *bl) {
  lua_State *L = c->L;
  double vd = 0, vl = 0;
  int rd = -1, rl = -1;
  const char *msg;
  *bd = c->ded;
  *bl = c->low;
  if (!c->autoscale)
    return;
  if (c->formula.p != NULL) {
    rd = azb_pf_formula_bound(c->formula.p, c->formula.n,
                              "$TargetDedicatedNodes", &vd);
    rl = azb_pf_formula_bound(c->formula.p, c->formula.n,
                              "$TargetLowPriorityNodes", &vl);
  }
  azb_pf_begin(c);
  if (rd == 0 || rl == 0 || (rd < 0 && rl < 0)) {
    msg = lua_pushfstring(L, "cannot tell the largest size the autoscale "
                          "formula can reach (%s); checked with the current "
                          "targets, %I node(s)", c->formula.p == NULL ?
                          "no formula" : rd < 0 && rl < 0 ?
                          "it assigns neither $TargetDedicatedNodes nor "
                          "$TargetLowPriorityNodes" : rd == 0 ?
                          "no number or min(...) with a number bounds "
                          "$TargetDedicatedNodes" :
                          "no number or min(...) with a number bounds "
                          "$TargetLowPriorityNodes",
                          (LUAI_UACINT)(c->ded + c->low));
    azb_pf_emit(c, SEV_WARNING, "AUTOSCALE_NODES_UNKNOWN", F_FORMULA, msg,
                "bound the targets in the formula, such as "
                "$TargetDedicatedNodes = min($pending, 100);");
    return;
  }
  *bd = rd > 0 ? azb_pf_bound_nodes(vd) : 0;
  *bl = rl > 0 ? azb_pf_bound_nodes(vl) : 0;
  msg = lua_pushfstring(L, "the autoscale formula reaches at most %I "
                        "dedicated and %I low-priority node(s); checked at "
                        "%I node(s)", (LUAI_UACINT)*bd, (LUAI_UACINT)*bl,
                        (LUAI_UACINT)(*bd + *bl));
  azb_pf_emit(c, SEV_INFO, "AUTOSCALE_NODES", F_FORMULA, msg, NULL);
}

void azb_pf_rule_resize(pf *c) {
  lua_State *L = c->L;
  double given = DEFAULT_RESIZE, need;
  const char *msg, *fix, *g, *n;
  if (c->autoscale)
    return;   /* the service ignores resizeTimeout for autoscale pools */
  need = azb_plan_resize_timeout((lua_Integer)c->nodes);
  if (c->resize_given) {
    const char *why = c->resize.p == NULL ? "not a string" :
                      azb_duration_parse(c->resize.p, c->resize.n, &given);
    if (why != NULL) {
      azb_pf_skip_for(c, G_RESIZE, F_RESIZE, "pool.resizeTimeout is not an "
                      "ISO-8601 duration (%s)", why);
      return;
    }
  }
  if (given >= need)
    return;
  azb_pf_begin(c);
  g = azb_pf_push_duration(L, given);
  n = azb_pf_push_duration(L, need);
  msg = lua_pushfstring(L, "resizeTimeout %s%s is short for %I nodes; allow "
                        "15 minutes per 1000 nodes: %s", g, c->resize_given ?
                        "" : " (the default)", (LUAI_UACINT)c->nodes, n);
  fix = lua_pushfstring(L, "set resizeTimeout to %s", n);
  azb_pf_emit(c, SEV_WARNING, "RESIZE_TIMEOUT_SHORT", F_RESIZE, msg, fix);
}

/*
** One core quota: this pool's cores plus what other pools use, against
** the quota; 'kind' is "dedicated" or "low-priority", 'quota_name' names
** the quota in the message (a string on the stack or a literal), and
** 'target' the pool field ("targetDedicatedNodes") whose formula variable
** is the same name with '$' and a capital.
*/
static void core_quota(pf *c, const char *code, const char *kind,
                       const char *quota_name, const char *target,
                       long long nodes, long long used, long long quota) {
  lua_State *L = c->L;
  long long need = nodes * c->vcpus, fit;
  const char *msg, *fix, *others = "";
  if (used < 0)
    used = 0;
  if (quota < 0 || nodes == 0 || need + used <= quota)
    return;
  fit = (quota - used) / c->vcpus;
  if (fit < 0)
    fit = 0;
  azb_pf_begin(c);
  if (used > 0)
    others = lua_pushfstring(L, " and other pools use %I",
                             (LUAI_UACINT)used);
  msg = lua_pushfstring(L, "%s%I %s node%s of %s need %I cores%s; the "
                        "account's %s is %I", c->autoscale ? "up to " : "",
                        (LUAI_UACINT)nodes, kind, nodes == 1 ? "" : "s",
                        azb_pf_q(c, size_name(c)), (LUAI_UACINT)need, others,
                        quota_name, (LUAI_UACINT)quota);
  if (c->autoscale)
    fix = lua_pushfstring(L, "request a quota increase (Azure portal: Batch "
                          "account, Quotas) or bound $T%s in the formula at "
                          "%I", target + 1, (LUAI_UACINT)fit);
  else
    fix = lua_pushfstring(L, "request a quota increase (Azure portal: Batch "
                          "account, Quotas) or reduce %s to %I", target,
                          (LUAI_UACINT)fit);
  azb_pf_emit(c, c->autoscale ? SEV_WARNING : SEV_ERROR, code,
              c->autoscale ? F_FORMULA : lua_pushfstring(L, "pool.%s", target),
              msg, fix);
}

void azb_pf_rule_quota(pf *c, long long ded, long long low) {
  lua_State *L = c->L;
  const char *msg;
  if (!c->acct) {
    azb_pf_skip(c, G_QUOTA, NULL, U_ACCOUNT, NULL);
    return;
  }
  if (azb_pf_span_is(c->acct_mode, "UserSubscription")) {
    azb_pf_begin(c);
    msg = lua_pushfstring(L, "the Batch account %s allocates pools in its "
                          "subscription (UserSubscription mode), whose core "
                          "quotas preflight does not read",
                          azb_pf_q(c, c->acct_name));
    azb_pf_emit(c, SEV_INFO, "QUOTA_SUBSCRIPTION", NULL, msg, "check the "
                "subscription's vCPU quotas for the VM family in the account's "
                "region");
    return;
  }
  if (!c->usage)
    azb_pf_skip(c, G_USAGE, NULL, U_USAGE, NULL);
  if (c->u_pools >= 0 && c->q_pools >= 0 && c->u_pools >= c->q_pools) {
    azb_pf_begin(c);
    msg = lua_pushfstring(L, "the Batch account %s has %I pool(s) and its "
                          "pool quota is %I", azb_pf_q(c, c->acct_name),
                          (LUAI_UACINT)c->u_pools, (LUAI_UACINT)c->q_pools);
    azb_pf_emit(c, SEV_ERROR, "QUOTA_POOLS", NULL, msg,
                "request a quota increase (Azure portal: Batch account, "
                "Quotas) or delete a pool the account no longer needs");
  }
  if (!azb_pf_vmsize_usable(c)) {
    skip_vmsize(c, G_QUOTA);
    return;
  }
  if (c->vcpus < 0) {
    azb_pf_skip_for(c, G_QUOTA, F_VMSIZE,
                    "facts.vm_size has no vCPUs capability");
    return;
  }
  if (c->q_ded < 0 && c->q_low < 0) {
    azb_pf_skip_for(c, G_QUOTA, NULL, "the Batch account's properties carry no "
                    "core quotas");
    return;
  }
  core_quota(c, "QUOTA_DEDICATED_CORES", "dedicated", "dedicated core quota",
             "targetDedicatedNodes", ded, c->u_ded, c->q_ded);
  if (c->fam_enforced && ded > 0) {
    if (c->q_fam < 0)
      azb_pf_skip_for(c, G_QUOTA, F_VMSIZE, "the VM family %s is not in the "
                      "account's dedicatedCoreQuotaPerVMFamily",
                      azb_pf_q(c, c->vs_family));
    else {
      int top = lua_gettop(L);
      core_quota(c, "QUOTA_VM_FAMILY_CORES", "dedicated",
                 lua_pushfstring(L, "dedicated core quota for the VM family "
                                 "%s", azb_pf_q(c, c->vs_family)),
                 "targetDedicatedNodes", ded, c->u_fam, c->q_fam);
      lua_settop(L, top);
    }
  }
  core_quota(c, "QUOTA_LOW_PRIORITY_CORES", "low-priority",
             "low-priority core quota", "targetLowPriorityNodes", low,
             c->u_low, c->q_low);
}

/* }====================================================== */
