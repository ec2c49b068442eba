/*
** azb_pfagent.c: the preflight rules on the node agent and on end of
** life: the agent's OS against the image's, an agent the account does
** not support or that does not fit the image (the chooser's answer,
** asked by core.preflight), and images or agents at or near the end of
** their support.
*/
#include <string.h>

#include "azb_preflight.h"

#define EOL_WARN_DAYS   90


/*
** {======================================================
** The node agent
** =======================================================
*/

static int agent_os(azb_span agent) {
  static const char prefix[] = "batch.node.windows";
  azb_span head;
  if (agent.p == NULL || agent.n < sizeof prefix - 1)
    return OS_LINUX;
  head.p = agent.p;
  head.n = sizeof prefix - 1;
  return azb_pf_span_is(head, prefix) ? OS_WINDOWS : OS_LINUX;
}

static const char *os_name(int os) {
  return os == OS_WINDOWS ? "Windows" : "Linux";
}

static const char *push_agent_fix(pf *c, int os) {
  lua_State *L = c->L;
  if (c->chosen_sku.p != NULL)
    return lua_pushfstring(L, "set nodeAgentSKUId to %s",
                           azb_pf_q(c, c->chosen_sku));
  return lua_pushfstring(L, "set nodeAgentSKUId to a %s agent the account "
                         "supports (GET /supportedimages)", os_name(os));
}

/* The chooser's message without its leading "<field>: ". */
static const char *chooser_why(pf *c) {
  const char *m = c->chose ? lua_tostring(c->L, c->reason) : NULL;
  size_t n = sizeof F_AGENT ": " - 1;
  if (m == NULL)
    return "none can be chosen";
  return strncmp(m, F_AGENT ": ", n) == 0 ? m + n : m;
}

void azb_pf_rule_agent(pf *c) {
  lua_State *L = c->L;
  int ios = azb_pf_image_os(c), os_bad = 0;
  const char *msg, *fix;
  if (c->kind == K_VHD)
    return;
  if (c->agent.p != NULL && ios != OS_UNKNOWN &&
      agent_os(c->agent) != ios) {
    os_bad = 1;
    azb_pf_begin(c);
    msg = lua_pushfstring(L, "%s is a %s agent but the image is %s",
                          azb_pf_q(c, c->agent), os_name(agent_os(c->agent)),
                          os_name(ios));
    fix = push_agent_fix(c, ios);
    azb_pf_emit(c, SEV_ERROR, "NODE_AGENT_OS", F_AGENT, msg, fix);
  }
  if (c->agent.p == NULL) {
    azb_pf_begin(c);
    if (c->chosen_sku.p != NULL) {
      msg = lua_pushfstring(L, "no nodeAgentSKUId given; %s fits: %s",
                            azb_pf_q(c, c->chosen_sku),
                            lua_tostring(L, c->reason));
      fix = lua_pushfstring(L, "nothing to do; set nodeAgentSKUId to %s to "
                            "pin it", azb_pf_q(c, c->chosen_sku));
      azb_pf_emit(c, SEV_INFO, "NODE_AGENT_CHOSEN", F_AGENT, msg, fix);
    }
    else {
      msg = lua_pushfstring(L, "no nodeAgentSKUId given, and %s",
                            chooser_why(c));
      azb_pf_emit(c, SEV_ERROR, "NODE_AGENT_MISSING", F_AGENT, msg,
                  "set nodeAgentSKUId to the candidate for the image's OS and "
                  "release, or tag the image version with "
                  "azbatch.nodeAgentSKUId");
    }
    return;
  }
  if (!c->si) {
    azb_pf_skip(c, G_AGENT, F_AGENT, U_SUPPORTED, NULL);
    return;
  }
  if (!c->agent_listed) {
    azb_pf_begin(c);
    msg = lua_pushfstring(L, "%s is not among the node agents the account "
                          "supports (GET /supportedimages)",
                          azb_pf_q(c, c->agent));
    fix = push_agent_fix(c, ios != OS_UNKNOWN ? ios : agent_os(c->agent));
    azb_pf_emit(c, SEV_ERROR, "NODE_AGENT_UNSUPPORTED", F_AGENT, msg, fix);
    return;
  }
  if (!os_bad && c->chosen_sku.p != NULL &&
      !azb_pf_span_ieq(c->chosen_sku, c->agent)) {
    azb_pf_begin(c);
    msg = lua_pushfstring(L, "%s does not fit the image; %s does: %s",
                          azb_pf_q(c, c->agent), azb_pf_q(c, c->chosen_sku),
                          lua_tostring(L, c->reason));
    fix = lua_pushfstring(L, "set nodeAgentSKUId to %s",
                          azb_pf_q(c, c->chosen_sku));
    azb_pf_emit(c, SEV_ERROR, "NODE_AGENT_MISMATCH", F_AGENT, msg, fix);
  }
}

/* }====================================================== */


/*
** {======================================================
** End of life
** =======================================================
*/

/* Push "on 2025-03-01 (in 20 days)" or "on ... (40 days ago)". */
static const char *push_when(pf *c, double t) {
  char date[16];
  double days = (t - c->now) / DAY;
  azb_pf_format_date(t, date);
  if (days >= 1)
    return lua_pushfstring(c->L, "on %s (in %d days)", date,
                           (int)(days + 0.999999));
  if (days > -1)
    return lua_pushfstring(c->L, "on %s (today)", date);
  return lua_pushfstring(c->L, "on %s (%d days ago)", date, (int)-days);
}

static void image_eol(pf *c, azb_span eol, const char *what, azb_span name) {
  lua_State *L = c->L;
  const char *msg;
  double t;
  if (eol.p == NULL)
    return;
  if (!azb_pf_parse_time(eol, &t)) {
    azb_pf_skip_for(c, G_EOL, F_VMID, "the %s's endOfLifeDate %s is not a date",
                    what, azb_pf_q(c, eol));
    return;
  }
  if (t - c->now > EOL_WARN_DAYS * DAY)
    return;
  azb_pf_begin(c);
  msg = lua_pushfstring(L, "the %s %s %s its end of life %s", what,
                        azb_pf_q(c, name), t <= c->now ? "reached" : "reaches",
                        push_when(c, t));
  azb_pf_emit(c, SEV_WARNING, "IMAGE_END_OF_LIFE", azb_pf_image_field(c), msg,
              "publish a newer image version and roll the pool to it");
}

void azb_pf_rule_eol(pf *c) {
  lua_State *L = c->L;
  azb_span agent = azb_pf_pool_agent(c);
  double t = 0;
  int known = 0;
  const char *msg;
  if (azb_pf_is_gallery(c) && c->ver.present)
    image_eol(c, c->ver.eol, "image version", c->ver.name);
  if ((azb_pf_is_gallery(c) || c->kind == K_SHARED || c->kind == K_COMMUNITY) &&
      c->def)
    image_eol(c, c->def_eol, "image definition", c->def_name);
  if (agent.p == NULL || !c->si)
    return;
  if (c->kind == K_MARKET && c->market_listed) {
    if (c->market_eol.p == NULL)
      return;
    if (!azb_pf_parse_time(c->market_eol, &t)) {
      azb_pf_skip_for(c, G_EOL, F_AGENT, "the supported image's "
                      "batchSupportEndOfLife %s is not a date",
                      azb_pf_q(c, c->market_eol));
      return;
    }
    known = 1;
  }
  else if (c->agent_eol_known) {
    t = c->agent_eol;
    known = 1;
  }
  if (!known || t - c->now > EOL_WARN_DAYS * DAY)
    return;
  azb_pf_begin(c);
  if (t <= c->now) {
    msg = lua_pushfstring(L, "Batch support for %s%s ended %s; the service "
                          "no longer accepts new pools with it",
                          azb_pf_q(c, agent),
                          c->kind == K_MARKET ? " with this image" : "",
                          push_when(c, t));
    azb_pf_emit(c, SEV_ERROR, "NODE_AGENT_RETIRED", F_AGENT, msg, "move to an "
                "image and agent the account still supports (GET "
                "/supportedimages)");
  }
  else {
    msg = lua_pushfstring(L, "Batch support for %s%s ends %s; then the "
                          "service stops accepting new pools with it",
                          azb_pf_q(c, agent), c->kind == K_MARKET ?
                          " with this image" : "", push_when(c, t));
    azb_pf_emit(c, SEV_WARNING, "NODE_AGENT_END_OF_LIFE", F_AGENT, msg,
                "plan the move to an image and agent with longer support "
                "(GET /supportedimages)");
  }
}

/* }====================================================== */
