/*
** azbatch_host.c: a scheduler-like program that embeds Lua and azbatch.
** It loads a rollout policy its user supplies and receives the rollout's
** events through a C function it registers (the sink): each event is
** copied out of Lua into C memory, written as one JSON line, counted, and
** the last one decides the exit status. See docs/embedding.md.
**
** usage: azbatch-host [--events FILE] [--approve=all|none|ask]
**                     [--lua-dir DIR] POLICY.lua [ARGS...]
*/
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"

#include "host_event.h"

int luaopen_azbatch_core(lua_State *L);

enum { EXIT_DONE = 0, EXIT_HOST = 1, EXIT_SCRIPT = 2, EXIT_ROLLED_BACK = 3, EXIT_STOPPED = 4 };

/* {======================================================
** The sink: what the scheduler does with each event
** ======================================================= */

typedef int host_sink(void *ud, const struct host_event *ev);

struct tally {
  char *type;
  unsigned long n;
};

struct recorder {
  FILE *out;
  const char *name;            /* the events file's name, for messages */
  int err;                     /* errno of the first failed write, or 0 */
  unsigned long seq;
  struct tally *tally;
  size_t ntally;
  char *outcome;               /* the last done, rolled_back or failed */
  char *message;               /* the last rollback's or failure's message */
  const char *secrets[3];      /* environment values never written out */
};

static int is(const struct host_event *ev, const char *type) {
  return strcmp(ev->type.p, type) == 0;
}

static int replace(char **slot, const char *s) {
  char *copy = NULL;
  if (s != NULL && (copy = malloc(strlen(s) + 1)) == NULL) return -1;
  if (copy != NULL) strcpy(copy, s);
  free(*slot);
  *slot = copy;
  return 0;
}

static int count(struct recorder *rec, const char *type) {
  size_t i;
  struct tally *grown;
  for (i = 0; i < rec->ntally; i++) {
    if (strcmp(rec->tally[i].type, type) == 0) {
      rec->tally[i].n++;
      return 0;
    }
  }
  grown = realloc(rec->tally, (rec->ntally + 1) * sizeof *grown);
  if (grown == NULL) return -1;
  rec->tally = grown;
  rec->tally[rec->ntally].type = NULL;
  if (replace(&rec->tally[rec->ntally].type, type) != 0) return -1;
  rec->tally[rec->ntally++].n = 1;
  return 0;
}

/* The host's sink: write the line, count it, remember the outcome. */
static int record(void *ud, const struct host_event *ev) {
  struct recorder *rec = ud;
  const struct host_field *msg = host_event_get(ev, "message");
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  if (host_event_write(rec->out, ev, ++rec->seq, &now, rec->secrets) != 0 && rec->err == 0)
    rec->err = errno ? errno : EIO;
  if (count(rec, ev->type.p) != 0) return -1;
  if (is(ev, "start")) {   /* a new rollout: the last one's end is not this one's */
    replace(&rec->outcome, NULL);
    replace(&rec->message, NULL);
  }
  if ((is(ev, "rollback") || is(ev, "failed")) && msg != NULL && msg->kind == HOST_STR)
    if (replace(&rec->message, msg->v.s.p) != 0) return -1;
  if (is(ev, "done") || is(ev, "rolled_back") || is(ev, "failed"))
    return replace(&rec->outcome, ev->type.p);
  return 0;
}

/* The last line: {"type":"summary","events":N,"counts":{...},"outcome":...,"exit":N} */
static void summarize(struct recorder *rec, int status) {
  struct timespec now;
  size_t i;
  FILE *f = rec->out;
  clock_gettime(CLOCK_REALTIME, &now);
  host_json_head(f, rec->seq + 1, &now, "summary", 7, rec->secrets);
  fprintf(f, ",\"events\":%lu,\"counts\":{", rec->seq);
  for (i = 0; i < rec->ntally; i++) {
    if (i > 0) putc(',', f);
    host_json_str(f, rec->tally[i].type, strlen(rec->tally[i].type), rec->secrets);
    fprintf(f, ":%lu", rec->tally[i].n);
  }
  fputs("},\"outcome\":", f);
  if (rec->outcome) host_json_str(f, rec->outcome, strlen(rec->outcome), rec->secrets);
  else fputs("null", f);
  fprintf(f, ",\"exit\":%d}\n", status);
  if ((fflush(f) != 0 || ferror(f)) && rec->err == 0) rec->err = errno ? errno : EIO;
}

static void recorder_free(struct recorder *rec) {
  size_t i;
  for (i = 0; i < rec->ntally; i++) free(rec->tally[i].type);
  free(rec->tally);
  free(rec->outcome);
  free(rec->message);
}

/* }====================================================== */

/* {======================================================
** Signals
** ======================================================= */

/* A handler can only reach statics: the signal that asked us to stop, and
** the state to interrupt on a second one (lua.c keeps 'globalL' alike). */
static volatile sig_atomic_t stop_signal = 0;
static lua_State *volatile running = NULL;

/* Raised at the next Lua instruction after a second signal, once. */
static void interrupt_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  luaL_error(L, "interrupted");
}

/* The first signal asks the policy to stop (host.stopping, approvals
** refused); the second interrupts the script; a third kills the process. */
static void on_signal(int sig) {
  if (stop_signal == 0) {
    stop_signal = sig;
    return;
  }
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  if (running != NULL)   /* lua_sethook is safe in a handler (ldebug.c) */
    lua_sethook(running, interrupt_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

static void catch_signals(int on) {
  struct sigaction sa;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  if (on) {
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;   /* no SA_RESTART: a blocked read returns */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
  }
  /* once the script has ended, a signal would only interrupt lua_close */
  sigprocmask(on ? SIG_UNBLOCK : SIG_BLOCK, &set, NULL);
}

static const char *signal_name(int sig) {
  return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "signal";
}

/* }====================================================== */

/* {======================================================
** The 'host' table the script sees
** ======================================================= */

enum approve_mode { APPROVE_ALL, APPROVE_NONE, APPROVE_ASK };
static const char *const approve_names[] = { "all", "none", "ask", NULL };

struct binding {
  host_sink *sink;             /* the registered event sink, and its data */
  void *ud;
  enum approve_mode approve;
  const char *const *secrets;
};

static struct binding *binding(lua_State *L) {
  return lua_touserdata(L, lua_upvalueindex(1));
}

static int deliver(lua_State *L, struct binding *b, struct host_event *ev, int built) {
  int r = built == 0 ? b->sink(b->ud, ev) : -1;
  host_event_free(ev);
  if (r != 0) return luaL_error(L, "host: out of memory");
  return 0;
}

/* host.emit(event) -> nothing. event: a table; its 'type' a string, or
** absent (a report entry from on_step: HOST_UNTYPED). Raises otherwise. */
static int host_emit(lua_State *L) {
  struct host_event ev;
  size_t len = sizeof HOST_UNTYPED - 1;
  const char *type = HOST_UNTYPED;
  int built;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "type");
  if (lua_type(L, -1) == LUA_TSTRING) type = lua_tolstring(L, -1, &len);
  else if (!lua_isnil(L, -1)) return luaL_argerror(L, 1, "field 'type' must be a string");
  built = host_event_init(&ev, type, len);
  if (built == 0) built = host_event_copy(&ev, L, 1);
  return deliver(L, binding(L), &ev, built);
}

/* The answer read from stdin to "approve ...? [y/N]"; EOF, an error or a
** signal is no. */
static int ask(const struct binding *b, lua_Integer n, const struct host_str *name) {
  char line[64];
  fprintf(stderr, "azbatch-host: approve step " LUA_INTEGER_FMT " (", (LUAI_UACINT)n);
  host_write_redacted(stderr, name->p, name->len, b->secrets);
  fputs(")? [y/N] ", stderr);
  fflush(stderr);
  if (fgets(line, sizeof line, stdin) == NULL) {
    clearerr(stdin);
    return 0;
  }
  if (strchr(line, '\n') == NULL) {   /* the rest of a long line is not the next answer */
    int c;
    while ((c = getchar()) != EOF && c != '\n')
      ;
  }
  return line[0] == 'y' || line[0] == 'Y';
}

/* host.approve(ctx, step) -> boolean: the approve hook, decided by
** --approve; refused once a signal asked us to stop. Emits an "approval". */
static int host_approve(lua_State *L) {
  struct binding *b = binding(L);
  struct host_event ev;
  lua_Integer n;
  size_t len;
  const char *name;
  int yes = 0, built;
  const char *by = approve_names[b->approve];
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_getfield(L, 2, "n");
  lua_getfield(L, 2, "name");
  n = lua_tointeger(L, -2);
  name = luaL_optlstring(L, -1, "", &len);
  built = host_event_init(&ev, "approval", 8);
  if (built == 0) built = host_event_int(&ev, "step", n);
  if (built == 0) built = host_event_str(&ev, "name", name, len);
  if (built == 0) {
    if (stop_signal == 0 && b->approve == APPROVE_ASK) yes = ask(b, n, &host_event_get(&ev, "name")->v.s);
    else yes = b->approve == APPROVE_ALL;
    if (stop_signal != 0) {   /* also when it came while we asked */
      yes = 0;
      by = signal_name(stop_signal);
    }
    built = host_event_bool(&ev, "approved", yes);
  }
  if (built == 0) built = host_event_str(&ev, "by", by, strlen(by));
  deliver(L, b, &ev, built);
  lua_pushboolean(L, yes);
  return 1;
}

/* host.stopping() -> false | "SIGINT" | "SIGTERM": whether to stop. */
static int host_stopping(lua_State *L) {
  if (stop_signal == 0) lua_pushboolean(L, 0);
  else lua_pushstring(L, signal_name(stop_signal));
  return 1;
}

static const luaL_Reg host_funcs[] = {
  { "emit", host_emit },
  { "approve", host_approve },
  { "stopping", host_stopping },
  { NULL, NULL }
};

/* Sets the global 'host' = {emit, approve, stopping, args = {...}}. */
static void open_host(lua_State *L, struct binding *b, char **args, int nargs) {
  int i;
  luaL_newlibtable(L, host_funcs);
  lua_pushlightuserdata(L, b);
  luaL_setfuncs(L, host_funcs, 1);
  lua_createtable(L, nargs, 0);
  for (i = 0; i < nargs; i++) {
    lua_pushstring(L, args[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "args");
  lua_setglobal(L, "host");
}

/* }====================================================== */

/* {======================================================
** Running the policy
** ======================================================= */

struct options {
  const char *events, *lua_dir, *policy;
  enum approve_mode approve;
  char **args;
  int nargs;
};

/* What the script left: how it ended, its verdict, and a C copy of its
** message (an error, or the string it returned second). */
struct result {
  int status;                  /* LUA_OK, or the load or run error */
  int verdict;                 /* its first return value, as a boolean */
  char *message;
};

/* The message handler: an error object that is not a string still says what
** it is (as lua.c's msghandler does). */
static int on_error(lua_State *L) {
  if (lua_isstring(L, 1)) return 1;
  if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
  lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  return 1;
}

static int copy_message(lua_State *L, int idx, struct result *res) {
  size_t len;
  const char *s = lua_tolstring(L, idx, &len);
  if (s == NULL) return 0;
  res->message = malloc(len + 1);
  if (res->message == NULL) return -1;
  memcpy(res->message, s, len + 1);
  return 0;
}

/* Runs the policy in a fresh state and closes it. Returns 0, or -1 when the
** state cannot be made. */
static int run_policy(const struct options *o, struct binding *b, struct result *res) {
  int base, i;
  lua_State *L = luaL_newstate();
  if (L == NULL) return -1;
  luaL_openlibs(L);
  /* the core is linked in and registered by name: no dlopen */
  luaL_requiref(L, "azbatch.core", luaopen_azbatch_core, 0);
  lua_pop(L, 1);
  if (o->lua_dir != NULL) {
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "path");
    lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s", o->lua_dir, o->lua_dir, lua_tostring(L, -1));
    lua_setfield(L, -3, "path");
    lua_pop(L, 2);
  }
  open_host(L, b, o->args, o->nargs);

  lua_pushcfunction(L, on_error);
  base = lua_gettop(L);
  res->status = luaL_loadfile(L, o->policy);
  if (res->status == LUA_OK) {
    for (i = 0; i < o->nargs; i++) lua_pushstring(L, o->args[i]);   /* also as '...' */
    running = L;
    catch_signals(1);
    res->status = lua_pcall(L, o->nargs, LUA_MULTRET, base);
    catch_signals(0);
    running = NULL;
  }
  lua_sethook(L, NULL, 0, 0);
  if (res->status != LUA_OK) {
    if (copy_message(L, -1, res) != 0) res->status = LUA_ERRMEM;
  }
  else {
    res->verdict = lua_gettop(L) > base && lua_toboolean(L, base + 1);
    if (lua_gettop(L) > base + 1 && lua_type(L, base + 2) == LUA_TSTRING && copy_message(L, base + 2, res) != 0)
      res->status = LUA_ERRMEM;
  }
  lua_close(L);
  return 0;
}

/* The exit status, from C memory only (the state is closed). */
static int exit_status(const struct recorder *rec, const struct result *res) {
  if (stop_signal != 0) return 128 + stop_signal;   /* whatever the policy reached */
  if (res->status != LUA_OK) return EXIT_SCRIPT;
  if (rec->outcome == NULL) return res->verdict ? EXIT_DONE : EXIT_STOPPED;
  if (strcmp(rec->outcome, "done") == 0) return EXIT_DONE;
  if (strcmp(rec->outcome, "rolled_back") == 0) return EXIT_ROLLED_BACK;
  return EXIT_STOPPED;
}

static void say(const struct recorder *rec, const char *what, const char *msg) {
  fprintf(stderr, "azbatch-host: %s", what);
  if (msg != NULL) {
    fputs(": ", stderr);
    host_write_redacted(stderr, msg, strlen(msg), rec->secrets);
  }
  putc('\n', stderr);
}

/* }====================================================== */

static void usage(FILE *f) {
  fputs("usage: azbatch-host [--events FILE] [--approve=all|none|ask] [--lua-dir DIR] POLICY.lua [ARGS...]\n", f);
}

static const char missing[] = "";

/* The value of --name=VALUE or --name VALUE at argv[*i], 'missing' when
** --name ends the line, or NULL when argv[*i] is another option. */
static const char *option(int argc, char **argv, int *i, const char *name) {
  size_t n = strlen(name);
  if (strncmp(argv[*i], name, n) != 0) return NULL;
  if (argv[*i][n] == '=') return argv[*i] + n + 1;
  if (argv[*i][n] != '\0') return NULL;
  return *i + 1 < argc ? argv[++*i] : missing;
}

/* Returns -1 on a usage error, 1 for --help, 0 to run. */
static int parse(int argc, char **argv, struct options *o) {
  static const char *const names[] = { "--events", "--lua-dir", "--approve", NULL };
  int i, k, m;
  const char *v = NULL;
  memset(o, 0, sizeof *o);
#ifdef HOST_LUA_DIR
  o->lua_dir = HOST_LUA_DIR;   /* the source tree's lua/, set by the Makefile */
#endif
  for (i = 1; i < argc && argv[i][0] == '-'; i++) {
    if (strcmp(argv[i], "--") == 0) { i++; break; }
    if (strcmp(argv[i], "--help") == 0) return 1;
    for (k = 0; names[k] != NULL && (v = option(argc, argv, &i, names[k])) == NULL; k++)
      ;
    if (names[k] == NULL || v == missing) {
      fprintf(stderr, names[k] ? "azbatch-host: %s needs a value\n" : "azbatch-host: unknown option '%s'\n",
              argv[i]);
      return -1;
    }
    if (k == 0) o->events = v;
    else if (k == 1) o->lua_dir = v;
    else {
      for (m = 0; approve_names[m] != NULL && strcmp(v, approve_names[m]) != 0; m++)
        ;
      if (approve_names[m] == NULL) {
        fprintf(stderr, "azbatch-host: --approve: expected all, none or ask, got '%s'\n", v);
        return -1;
      }
      o->approve = (enum approve_mode)m;
    }
  }
  if (i >= argc) {
    usage(stderr);
    return -1;
  }
  o->policy = argv[i];
  o->args = argv + i + 1;
  o->nargs = argc - i - 1;
  return 0;
}

int main(int argc, char **argv) {
  struct options o;
  struct recorder rec;
  struct binding b;
  struct result res = { LUA_OK, 0, NULL };
  int status, r = parse(argc, argv, &o);
  if (r != 0) {
    if (r > 0) usage(stdout);
    return r > 0 ? 0 : EXIT_HOST;
  }
  memset(&rec, 0, sizeof rec);
  r = 0;   /* the secrets list ends at its first NULL */
  if ((rec.secrets[r] = getenv("AZURE_BATCH_ACCESS_KEY")) != NULL) r++;
  rec.secrets[r] = getenv("AZURE_CLIENT_SECRET");
  rec.out = stdout;
  rec.name = "stdout";
  if (o.events != NULL && strcmp(o.events, "-") != 0) {
    rec.name = o.events;
    if ((rec.out = fopen(o.events, "w")) == NULL) {
      fprintf(stderr, "azbatch-host: %s: %s\n", o.events, strerror(errno));
      return EXIT_HOST;
    }
  }
  setvbuf(rec.out, NULL, _IOLBF, 0);   /* a reader sees each event at once */
  b.sink = record;
  b.ud = &rec;
  b.approve = o.approve;
  b.secrets = rec.secrets;

  if (run_policy(&o, &b, &res) != 0) {
    say(&rec, "cannot create a Lua state", NULL);
    status = EXIT_HOST;
  }
  else {
    status = exit_status(&rec, &res);
    summarize(&rec, status);
    if (stop_signal != 0)
      say(&rec, stop_signal == SIGINT ? "stopped by SIGINT" : "stopped by SIGTERM", res.message);
    else if (res.status != LUA_OK)
      say(&rec, res.status == LUA_ERRMEM ? "out of memory" : "error", res.message);
    else if (status == EXIT_ROLLED_BACK)
      say(&rec, "rolled back", res.message ? res.message : rec.message);
    else if (status == EXIT_STOPPED)
      say(&rec, rec.outcome ? "stopped (resume or abort it)" : "no rollout finished",
          res.message ? res.message : rec.message);
  }
  if (rec.out != stdout && fclose(rec.out) != 0 && rec.err == 0) rec.err = errno;
  if (rec.out == stdout && fflush(stdout) != 0 && rec.err == 0) rec.err = errno;
  if (rec.err != 0) {
    fprintf(stderr, "azbatch-host: %s: %s\n", rec.name, strerror(rec.err));
    status = EXIT_HOST;
  }
  recorder_free(&rec);
  free(res.message);
  return status;
}
