/*
** azb_duration.c: ISO-8601 durations as Azure uses them for TimeSpan
** fields (resizeTimeout, autoScaleEvaluationInterval, ...).
** Pure C: no Lua calls, never raises, no allocation (fuzzed).
*/
#include <stdio.h>
#include <string.h>

#include "azb.h"

#define MAX_DAYS     10000
#define MAX_SECONDS  ((double)MAX_DAYS * 86400.0)
#define NS_PER_S     1000000000ULL

static const char EXPECTED[] = "expected ISO-8601 duration such as 'PT15M'";

/*
** Designators in the order ISO-8601 fixes. Years and calendar months
** parse (so the message can say why) but are refused: their length in
** seconds depends on the date.
*/
enum { R_NONE, R_YEAR, R_MONTH, R_WEEK, R_DAY, R_HOUR, R_MINUTE, R_SECOND };

static int upper(int c) {
  return (c >= 'a' && c <= 'z') ? c - 'a' + 'A' : c;
}

static int rank_of(int d, int intime) {
  switch (d) {
    case 'Y': return intime ? R_NONE : R_YEAR;
    case 'W': return intime ? R_NONE : R_WEEK;
    case 'D': return intime ? R_NONE : R_DAY;
    case 'H': return intime ? R_HOUR : R_NONE;
    case 'M': return intime ? R_MINUTE : R_MONTH;
    case 'S': return intime ? R_SECOND : R_NONE;
    default: return R_NONE;
  }
}

static const double unit_seconds[] = {
  0, 0, 0, 7 * 86400.0, 86400.0, 3600.0, 60.0, 1.0
};

/*
** Designators are accepted in either case ("pt15m"): .NET's XmlConvert
** and most clients are liberal here, and nothing is ambiguous.
*/
const char *azb_duration_parse(const char *s, size_t len, double *seconds) {
  size_t i = 0;
  int intime = 0, last = R_NONE, any = 0, timeany = 0;
  double total = 0;
  *seconds = 0;
  if (len == 0)
    return EXPECTED;
  for (size_t k = 0; k < len; k++) {
    unsigned char c = (unsigned char)s[k];
    if (c == ' ' || (c >= '\t' && c <= '\r'))
      return "must not contain whitespace";
  }
  if (s[0] == '-')
    return "negative durations are not allowed";
  if (upper((unsigned char)s[0]) != 'P')
    return EXPECTED;
  i = 1;
  if (i == len)
    return "'P' must be followed by a component, such as 'PT15M'";
  while (i < len) {
    unsigned long long whole = 0, frac = 0, fscale = 1;
    int hasfrac = 0, rank;
    size_t start;
    if (upper((unsigned char)s[i]) == 'T') {
      if (intime)
        return "'T' may appear only once";
      intime = 1;
      i++;
      if (i == len)
        return "'T' must be followed by hours, minutes or seconds";
      continue;
    }
    if (s[i] == '-' || s[i] == '+')
      return "negative durations are not allowed";
    start = i;
    while (i < len && azb_isdigit((unsigned char)s[i])) {
      /* anything past 10000 days is refused below; stop before overflow */
      if (whole < 100000000000000ULL)
        whole = whole * 10 + (unsigned)(s[i] - '0');
      i++;
    }
    if (i == start)
      return (s[i] == '.' || s[i] == ',') ? "expected digits before '.'"
                                          : EXPECTED;
    if (i < len && (s[i] == '.' || s[i] == ',')) {
      size_t fstart = ++i;
      hasfrac = 1;
      while (i < len && azb_isdigit((unsigned char)s[i])) {
        if (fscale < 1000000000000000000ULL) {  /* 18 digits are plenty */
          frac = frac * 10 + (unsigned)(s[i] - '0');
          fscale *= 10;
        }
        i++;
      }
      if (i == fstart)
        return "expected digits after '.'";
    }
    if (i == len)
      return "a number must be followed by a designator such as 'M'";
    rank = rank_of(upper((unsigned char)s[i]), intime);
    if (rank == R_NONE)
      return intime ? "expected H, M or S after a number in the time part"
                    : "expected W or D after a number (hours, minutes and "
                      "seconds follow 'T', as in 'PT15M')";
    if (rank == R_YEAR || rank == R_MONTH)
      return "years and months are not fixed lengths; use days";
    if (rank <= last)
      return "designators must appear once each, in the order W D T H M S";
    if (hasfrac && rank != R_SECOND)
      return "only the seconds may have a fraction";
    /* a fraction makes seconds the last component */
    total += (double)whole * unit_seconds[rank];
    if (hasfrac)
      total += (double)frac / (double)fscale;
    if (total > MAX_SECONDS)
      return "must not exceed 10000 days";
    last = rank;
    any = 1;
    if (intime)
      timeany = 1;
    i++;
  }
  if (intime && !timeany)
    return "'T' must be followed by hours, minutes or seconds";
  if (!any)
    return EXPECTED;
  *seconds = total;
  return NULL;
}


/*
** Canonical form: days, then hours, minutes and seconds, zero parts
** left out; fractions to the nanosecond with trailing zeros cut.
** Negative, NaN and infinite values are misuse (the Lua layer raises);
** they print as PT0S here so the buffer always holds a valid duration.
*/
void azb_duration_format(double seconds, char *buf, size_t bufsz) {
  unsigned long long whole, ns, days, h, m, sec;
  size_t n = 0;
  char frac[24];   /* ".%09llu" of any 64-bit value fits */
  if (bufsz == 0)
    return;
  if (!(seconds >= 0) || seconds > 1e15)   /* NaN fails the test too */
    seconds = (seconds > 1e15) ? 1e15 : 0;
  whole = (unsigned long long)seconds;
  ns = (unsigned long long)((seconds - (double)whole) * 1e9 + 0.5);
  if (ns >= NS_PER_S) {
    whole++;
    ns -= NS_PER_S;
  }
  days = whole / 86400;
  h = whole % 86400 / 3600;
  m = whole % 3600 / 60;
  sec = whole % 60;
  frac[0] = '\0';
  if (ns > 0) {
    int k = 9;
    snprintf(frac, sizeof frac, ".%09llu", ns);
    while (frac[k] == '0')
      frac[k--] = '\0';
  }
#define PUT(...) do { \
    int w_ = snprintf(buf + n, bufsz - n, __VA_ARGS__); \
    if (w_ < 0 || (size_t)w_ >= bufsz - n) return; \
    n += (size_t)w_; } while (0)
  PUT("P");
  if (days > 0)
    PUT("%lluD", days);
  if (h > 0 || m > 0 || sec > 0 || ns > 0 || days == 0) {
    PUT("T");
    if (h > 0)
      PUT("%lluH", h);
    if (m > 0)
      PUT("%lluM", m);
    if (sec > 0 || ns > 0 || (h == 0 && m == 0))
      PUT("%llu%sS", sec, frac);
  }
#undef PUT
}
