/*
** host_event.h: an event as the host keeps it. The scalar fields of a
** Lua table are copied into C memory (nothing points into Lua once the
** copy is made), and an event is written out as one line of JSON.
*/
#ifndef HOST_EVENT_H
#define HOST_EVENT_H

#include <stddef.h>
#include <stdio.h>
#include <time.h>

#include "lua.h"

/* A byte string of our own (it may hold NULs; it is NUL-terminated too). */
struct host_str {
  char *p;
  size_t len;
};

enum host_kind { HOST_STR, HOST_INT, HOST_NUM, HOST_BOOL };

struct host_field {
  struct host_str key;
  enum host_kind kind;
  union {
    struct host_str s;
    lua_Integer i;
    lua_Number n;
    int b;
  } v;
};

struct host_event {
  struct host_str type;
  struct host_field *fields;
  size_t n, cap;
};

/* The type of a table given to host.emit without a string 'type': a
** rollout's report entry, which on_step passes when a step ends. */
#define HOST_UNTYPED "step_end"

/* Each returns 0, or -1 when memory runs out (the event stays freeable). */
int host_event_init(struct host_event *ev, const char *type, size_t len);
int host_event_str(struct host_event *ev, const char *key, const char *s, size_t len);
int host_event_int(struct host_event *ev, const char *key, lua_Integer i);
int host_event_bool(struct host_event *ev, const char *key, int b);
/* Copies the string, number and boolean fields with string keys of the
** table at 'idx' (but 'type', and the host's own 'seq' and 'time'). */
int host_event_copy(struct host_event *ev, lua_State *L, int idx);
void host_event_free(struct host_event *ev);

/* The field named 'key', or NULL. */
const struct host_field *host_event_get(const struct host_event *ev, const char *key);

/* {"seq":N,"time":"...Z","type":"..." and the fields in key order, then
** "}\n". Strings pass through host_json_str. Returns 0, or -1 on a write
** error (errno says which). */
int host_event_write(FILE *f, const struct host_event *ev, unsigned long seq,
                     const struct timespec *when, const char *const *secrets);
/* The head only: {"seq":N,"time":"...","type":"..." (no closing brace). */
void host_json_head(FILE *f, unsigned long seq, const struct timespec *when,
                    const char *type, size_t len, const char *const *secrets);
/* A JSON string: escaped, invalid UTF-8 as U+FFFD, and every occurrence of
** a string in 'secrets' (NULL-terminated) written as "***". */
void host_json_str(FILE *f, const char *s, size_t len, const char *const *secrets);
/* The same redaction for plain text (a message on stderr). */
void host_write_redacted(FILE *f, const char *s, size_t len, const char *const *secrets);

#endif
