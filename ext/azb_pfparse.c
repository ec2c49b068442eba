/*
** azb_pfparse.c: the preflight's pure parsers. Spans compared ignoring
** case, resource ids and region names as ARM writes them, gallery
** version names, ISO-8601 dates, and the largest target an autoscale
** formula can set. No Lua: everything here reads bytes and never fails
** loudly, since every input came from the network.
*/
#include <string.h>

#include "azb_preflight.h"

/*
** {======================================================
** Pure helpers: spans, versions, dates, ids, regions, formulas
** =======================================================
*/

static int lower(int c) {
  return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

int azb_pf_span_ieq(azb_span a, azb_span b) {
  if (a.p == NULL || b.p == NULL || a.n != b.n)
    return 0;
  for (size_t i = 0; i < a.n; i++)
    if (lower((unsigned char)a.p[i]) != lower((unsigned char)b.p[i]))
      return 0;
  return 1;
}

int azb_pf_span_is(azb_span a, const char *s) {
  azb_span b;
  b.p = s;
  b.n = strlen(s);
  return azb_pf_span_ieq(a, b);
}

int azb_pf_span_ends(azb_span a, const char *suffix) {
  size_t n = strlen(suffix);
  azb_span tail;
  if (a.p == NULL || a.n < n)
    return 0;
  tail.p = a.p + a.n - n;
  tail.n = n;
  return azb_pf_span_is(tail, suffix);
}

/* Region names as ARM writes them ("West Europe", "westeurope"). */
int azb_pf_region_eq(azb_span a, azb_span b) {
  size_t i = 0, j = 0, same = 0;
  if (a.p == NULL || b.p == NULL)
    return 0;
  for (;; same++) {
    while (i < a.n && (a.p[i] == ' ' || a.p[i] == '-' || a.p[i] == '_'))
      i++;
    while (j < b.n && (b.p[j] == ' ' || b.p[j] == '-' || b.p[j] == '_'))
      j++;
    if (i == a.n || j == b.n)
      return i == a.n && j == b.n && same > 0;
    if (lower((unsigned char)a.p[i]) != lower((unsigned char)b.p[j]))
      return 0;
    i++;
    j++;
  }
}

/* "/subscriptions/{id}/...": the id, or an empty span. */
azb_span azb_pf_id_subscription(azb_span id) {
  static const char prefix[] = "/subscriptions/";
  azb_span head, sub = { NULL, 0 };
  size_t n = sizeof prefix - 1, j;
  if (id.p == NULL || id.n <= n)
    return sub;
  head.p = id.p;
  head.n = n;
  if (!azb_pf_span_is(head, prefix))
    return sub;
  for (j = n; j < id.n && id.p[j] != '/'; j++)
    ;
  if (j > n) {
    sub.p = id.p + n;
    sub.n = j - n;
  }
  return sub;
}

/* The last segment of an id or path, or an empty span. */
azb_span azb_pf_last_segment(azb_span id) {
  azb_span s = { NULL, 0 };
  size_t i;
  if (id.p == NULL)
    return s;
  for (i = id.n; i > 0 && id.p[i - 1] != '/'; i--)
    ;
  s.p = id.p + i;
  s.n = id.n - i;
  return s;
}

/*
** A gallery version name: exactly major.minor.patch, each a decimal
** int32 (the gallery's own rule). Returns 1 and fills v, else 0.
*/
int azb_pf_parse_semver(azb_span s, long long v[3]) {
  size_t i = 0;
  if (s.p == NULL)
    return 0;
  for (int k = 0; k < 3; k++) {
    size_t start = i;
    v[k] = 0;
    while (i < s.n && azb_isdigit((unsigned char)s.p[i])) {
      v[k] = v[k] * 10 + (s.p[i] - '0');
      if (v[k] > COUNT_MAX)
        return 0;
      i++;
    }
    if (i == start)
      return 0;
    if (k < 2) {
      if (i >= s.n || s.p[i] != '.')
        return 0;
      i++;
    }
  }
  return i == s.n;
}

int azb_pf_semver_cmp(const long long a[3], const long long b[3]) {
  for (int k = 0; k < 3; k++)
    if (a[k] != b[k])
      return a[k] < b[k] ? -1 : 1;
  return 0;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; H. Hinnant). */
static long long days_from_civil(long long y, int m, int d) {
  long long era, yoe, doy, doe;
  y -= m <= 2;
  era = (y >= 0 ? y : y - 399) / 400;
  yoe = y - era * 400;
  doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static void civil_from_days(long long z, long long *y, int *m, int *d) {
  long long era, doe, yoe, doy, mp;
  z += 719468;
  era = (z >= 0 ? z : z - 146096) / 146097;
  doe = z - era * 146097;
  yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  mp = (5 * doy + 2) / 153;
  *d = (int)(doy - (153 * mp + 2) / 5 + 1);
  *m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = yoe + era * 400 + (*m <= 2);
}

static int digits(const char *p, size_t n, size_t at, int count, int *out) {
  int v = 0;
  if (at + (size_t)count > n)
    return 0;
  for (int i = 0; i < count; i++) {
    if (!azb_isdigit((unsigned char)p[at + i]))
      return 0;
    v = v * 10 + (p[at + i] - '0');
  }
  *out = v;
  return 1;
}

/*
** An ISO-8601 date or date-time as ARM and Batch write them
** ("2025-06-30", "2019-11-01T00:00:00.0Z", "2026-01-01T00:00:00+01:00"):
** seconds since the epoch. Returns 1, or 0 for anything else.
*/
int azb_pf_parse_time(azb_span s, double *t) {
  const char *p = s.p;
  size_t n = s.n, i = 10;
  int y, mo, d, h = 0, mi = 0, sec = 0, oh = 0, om = 0, sign = 0;
  static const int mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31,
                                 30, 31 };
  if (p == NULL || !digits(p, n, 0, 4, &y) || n < 10 || p[4] != '-' ||
      !digits(p, n, 5, 2, &mo) || p[7] != '-' || !digits(p, n, 8, 2, &d))
    return 0;
  if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] ||
      (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))))
    return 0;
  if (i < n && (p[i] == 'T' || p[i] == 't' || p[i] == ' ')) {
    if (!digits(p, n, i + 1, 2, &h) || i + 3 >= n || p[i + 3] != ':' ||
        !digits(p, n, i + 4, 2, &mi))
      return 0;
    i += 6;
    if (i < n && p[i] == ':') {
      if (!digits(p, n, i + 1, 2, &sec))
        return 0;
      i += 3;
      if (i < n && (p[i] == '.' || p[i] == ',')) {
        size_t start = ++i;
        while (i < n && azb_isdigit((unsigned char)p[i]))
          i++;
        if (i == start)
          return 0;
      }
    }
    if (h > 23 || mi > 59 || sec > 60)
      return 0;
    if (i < n && (p[i] == 'Z' || p[i] == 'z'))
      i++;
    else if (i < n && (p[i] == '+' || p[i] == '-')) {
      sign = p[i] == '-' ? -1 : 1;
      if (!digits(p, n, i + 1, 2, &oh))
        return 0;
      i += 3;
      if (i < n && p[i] == ':')
        i++;
      if (!digits(p, n, i, 2, &om))
        return 0;
      i += 2;
      if (oh > 23 || om > 59)
        return 0;
    }
  }
  if (i != n)
    return 0;
  *t = (double)days_from_civil(y, mo, d) * DAY + h * 3600.0 + mi * 60.0 +
       sec - sign * (oh * 3600.0 + om * 60.0);
  return 1;
}

/* "YYYY-MM-DD" of t into out (>= 16 bytes). */
void azb_pf_format_date(double t, char *out) {
  long long days = (long long)(t / DAY), y;
  int m, d, k = 0;
  char tmp[24];
  if ((double)days * DAY > t)
    days--;
  civil_from_days(days, &y, &m, &d);
  if (y < 0 || y > 9999)
    y = y < 0 ? 0 : 9999;
  tmp[k++] = (char)('0' + y / 1000);
  tmp[k++] = (char)('0' + y / 100 % 10);
  tmp[k++] = (char)('0' + y / 10 % 10);
  tmp[k++] = (char)('0' + y % 10);
  tmp[k++] = '-';
  tmp[k++] = (char)('0' + m / 10);
  tmp[k++] = (char)('0' + m % 10);
  tmp[k++] = '-';
  tmp[k++] = (char)('0' + d / 10);
  tmp[k++] = (char)('0' + d % 10);
  tmp[k] = '\0';
  memcpy(out, tmp, (size_t)k + 1);
}

/* Is the span a plain non-negative decimal number? Its value in *v. */
int azb_pf_number_literal(const char *p, size_t n, double *v) {
  double r = 0, scale = 1;
  size_t i = 0;
  int ndig = 0, dot = 0;
  for (; i < n; i++) {
    if (azb_isdigit((unsigned char)p[i])) {
      if (dot) {
        scale /= 10;
        r += (p[i] - '0') * scale;
      }
      else if (r < 1e15)
        r = r * 10 + (p[i] - '0');
      ndig++;
    }
    else if (p[i] == '.' && !dot)
      dot = 1;
    else
      return 0;
  }
  *v = r;
  return ndig > 0;
}

static int isspace_(int c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' ||
         c == '\v';
}

int azb_pf_isident(int c) {
  return azb_isdigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         c == '_' || c == '$';
}

/* Trim blanks off both ends of [*p, *p + *n). */
void azb_pf_trim(const char **p, size_t *n) {
  while (*n > 0 && isspace_((unsigned char)(*p)[0])) {
    (*p)++;
    (*n)--;
  }
  while (*n > 0 && isspace_((unsigned char)(*p)[*n - 1]))
    (*n)--;
}

/*
** An upper bound of an assigned expression: a number, or min(...) with at
** least one number among its arguments (the smallest). 1 and *v, or 0.
*/
static int expr_bound(const char *p, size_t n, double *v) {
  size_t i, start, depth = 0;
  int found = 0;
  azb_pf_trim(&p, &n);
  if (azb_pf_number_literal(p, n, v))
    return 1;
  if (n < 5 || lower((unsigned char)p[0]) != 'm' ||
      lower((unsigned char)p[1]) != 'i' || lower((unsigned char)p[2]) != 'n')
    return 0;
  for (i = 3; i < n && isspace_((unsigned char)p[i]); i++)
    ;
  if (i >= n || p[i] != '(' || p[n - 1] != ')')
    return 0;
  start = ++i;
  for (; i < n; i++) {
    int c = (unsigned char)p[i];
    if (c == '(')
      depth++;
    else if (c == ')' && depth > 0)
      depth--;
    else if ((c == ',' && depth == 0) || (c == ')' && i == n - 1)) {
      double a;
      const char *arg = p + start;
      size_t an = i - start;
      azb_pf_trim(&arg, &an);
      if (azb_pf_number_literal(arg, an, &a) && (!found || a < *v)) {
        *v = a;
        found = 1;
      }
      start = i + 1;
    }
    else if (c == ')')
      return 0;   /* min(...) is not the whole expression */
  }
  return found;
}

/* Skip blanks and comments from i; returns the new index. */
static size_t skip_blank(const char *p, size_t n, size_t i) {
  for (;;) {
    while (i < n && isspace_((unsigned char)p[i]))
      i++;
    if (i + 1 < n && p[i] == '/' && p[i + 1] == '/') {
      while (i < n && p[i] != '\n')
        i++;
    }
    else if (i + 1 < n && p[i] == '/' && p[i + 1] == '*') {
      i += 2;
      while (i + 1 < n && !(p[i] == '*' && p[i + 1] == '/'))
        i++;
      i = i + 2 < n ? i + 2 : n;
    }
    else
      return i;
  }
}

/*
** The largest value the autoscale formula can give 'var' (such as
** "$TargetDedicatedNodes"). Statements run in order, so the last
** assignment decides: 1 with *bound when it is a number or a min(...)
** with a number, 0 when it is something else, -1 when nothing assigns it.
*/
int azb_pf_formula_bound(const char *p, size_t n, const char *var,
                         double *bound) {
  size_t vn = strlen(var), i = 0;
  int result = -1;
  while (i < n) {
    size_t s = skip_blank(p, n, i), e = s;
    /* the end of the statement: the next ';' outside comments */
    while (e < n && p[e] != ';') {
      if (e + 1 < n && p[e] == '/' && (p[e + 1] == '/' || p[e + 1] == '*'))
        e = skip_blank(p, n, e);
      else
        e++;
    }
    if (e - s > vn) {
      size_t k;
      for (k = 0; k < vn; k++)
        if (lower((unsigned char)p[s + k]) != lower((unsigned char)var[k]))
          break;
      if (k == vn && !azb_pf_isident((unsigned char)p[s + vn])) {
        size_t a = skip_blank(p, e, s + vn);
        if (a < e && p[a] == '=' && (a + 1 >= e || p[a + 1] != '=')) {
          double v = 0;
          /* comments inside the expression: give up rather than guess */
          int clean = 1;
          for (size_t c = a + 1; c + 1 < e; c++)
            if (p[c] == '/' && (p[c + 1] == '/' || p[c + 1] == '*'))
              clean = 0;
          result = clean && expr_bound(p + a + 1, e - a - 1, &v);
          if (result)
            *bound = v;
        }
      }
    }
    i = e + 1;
  }
  return result;
}

/* A whole number of nodes from a bound: rounded up, capped to int32. */
long long azb_pf_bound_nodes(double v) {
  long long r;
  if (!(v > 0))
    return 0;
  if (v >= (double)COUNT_MAX)
    return COUNT_MAX;
  r = (long long)v;
  return (double)r < v ? r + 1 : r;
}

/* }====================================================== */
