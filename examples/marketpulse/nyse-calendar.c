/* The NYSE holiday calendar from its rules: see nyse-calendar.h. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "nyse-calendar.h"

enum { SUNDAY, MONDAY, TUESDAY, WEDNESDAY, THURSDAY, FRIDAY, SATURDAY };

/* The first years of the holidays added since 1971. */
#define MLK_DAY_SINCE 1998
#define JUNETEENTH_SINCE 2022

#define REGULAR_CLOSE (16 * 60)
#define EARLY_CLOSE (13 * 60)

static bool is_leap(int year)
{
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

static int days_in_month(int year, int month)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return month == 2 && is_leap(year) ? 29 : days[month - 1];
}

bool nyse_date_valid(int year, int month, int day)
{
    return month >= 1 && month <= 12 && day >= 1 && day <= days_in_month(year, month);
}

/* Howard Hinnant's days_from_civil: exact for every proleptic Gregorian
 * date, with floor division so that years before 1970 work too. */
int64_t nyse_date_to_days(nyse_date date)
{
    int64_t y = (int64_t)date.year - (date.month <= 2);
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;                                   /* 0..399 */
    int64_t mp = date.month > 2 ? date.month - 3 : date.month + 9; /* March = 0 */
    int64_t doy = (153 * mp + 2) / 5 + date.day - 1;               /* 0..365 */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;           /* 0..146096 */
    return era * 146097 + doe - 719468;
}

nyse_date nyse_date_from_days(int64_t days)
{
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int month = (int)(mp < 10 ? mp + 3 : mp - 9);
    return (nyse_date){(int)(yoe + era * 400 + (month <= 2)), month,
                       (int)(doy - (153 * mp + 2) / 5 + 1)};
}

int nyse_weekday(nyse_date date)
{
    int64_t w = (nyse_date_to_days(date) + THURSDAY) % 7; /* 1970-01-01 */
    return (int)(w < 0 ? w + 7 : w);
}

nyse_date nyse_date_add(nyse_date date, int64_t n)
{
    return nyse_date_from_days(nyse_date_to_days(date) + n);
}

int nyse_date_cmp(nyse_date a, nyse_date b)
{
    if (a.year != b.year)
        return a.year < b.year ? -1 : 1;
    if (a.month != b.month)
        return a.month < b.month ? -1 : 1;
    return a.day < b.day ? -1 : a.day > b.day;
}

nyse_date nyse_easter(int year)
{
    int a = year % 19;
    int b = year / 100, c = year % 100;
    int d = b / 4, e = b % 4;
    int f = (b + 8) / 25;
    int g = (b - f + 1) / 3;
    int h = (19 * a + b - d - g + 15) % 30;
    int i = c / 4, k = c % 4;
    int l = (32 + 2 * e + 2 * i - h - k) % 7;
    int m = (a + 11 * h + 22 * l) / 451;
    int n = h + l - 7 * m + 114;
    return (nyse_date){year, n / 31, n % 31 + 1};
}

/* The nth (1..5) given weekday of a month. */
static nyse_date nth_weekday(int year, int month, int weekday, int nth)
{
    nyse_date first = {year, month, 1};
    first.day += (weekday - nyse_weekday(first) + 7) % 7 + 7 * (nth - 1);
    return first;
}

static nyse_date last_weekday(int year, int month, int weekday)
{
    nyse_date last = {year, month, days_in_month(year, month)};
    last.day -= (nyse_weekday(last) - weekday + 7) % 7;
    return last;
}

/* Entries are collected here in date order before they are filtered. */
typedef struct year_list {
    nyse_holiday entry[NYSE_MAX_PER_YEAR];
    int count;
} year_list;

static void add(year_list *list, nyse_date date, nyse_kind kind, const char *name,
                bool observed)
{
    if (list->count < NYSE_MAX_PER_YEAR)
        list->entry[list->count++] = (nyse_holiday){date, kind, name, observed};
}

/* A fixed-date holiday other than New Year's Day: Saturday moves to the
 * Friday before, Sunday to the Monday after. */
static void add_fixed(year_list *list, int year, int month, int day, const char *name)
{
    nyse_date date = {year, month, day};
    switch (nyse_weekday(date)) {
    case SATURDAY: add(list, nyse_date_add(date, -1), NYSE_CLOSED, name, true); break;
    case SUNDAY: add(list, nyse_date_add(date, 1), NYSE_CLOSED, name, true); break;
    default: add(list, date, NYSE_CLOSED, name, false); break;
    }
}

static bool monday_to_thursday(nyse_date date)
{
    int wd = nyse_weekday(date);
    return wd >= MONDAY && wd <= THURSDAY;
}

static void build_year(int year, year_list *list)
{
    list->count = 0;

    /* New Year's Day: on a Sunday the Monday after; on a Saturday not at all
     * (NYSE Rule 7.2: the Friday ends the yearly accounting period). */
    nyse_date new_year = {year, 1, 1};
    switch (nyse_weekday(new_year)) {
    case SATURDAY: break;
    case SUNDAY: add(list, (nyse_date){year, 1, 2}, NYSE_CLOSED, "New Year's Day", true); break;
    default: add(list, new_year, NYSE_CLOSED, "New Year's Day", false); break;
    }

    if (year >= MLK_DAY_SINCE)
        add(list, nth_weekday(year, 1, MONDAY, 3), NYSE_CLOSED, "Martin Luther King Jr. Day",
            false);
    add(list, nth_weekday(year, 2, MONDAY, 3), NYSE_CLOSED,
        "Washington's Birthday (Presidents' Day)", false);
    add(list, nyse_date_add(nyse_easter(year), -2), NYSE_CLOSED, "Good Friday", false);
    add(list, last_weekday(year, 5, MONDAY), NYSE_CLOSED, "Memorial Day", false);
    if (year >= JUNETEENTH_SINCE)
        add_fixed(list, year, 6, 19, "Juneteenth National Independence Day");

    /* July 3 closes early when it is Monday to Thursday; on a Friday it is
     * the observed Independence Day itself. */
    nyse_date july3 = {year, 7, 3};
    if (monday_to_thursday(july3))
        add(list, july3, NYSE_EARLY_CLOSE, "Independence Day Eve", false);
    add_fixed(list, year, 7, 4, "Independence Day");

    add(list, nth_weekday(year, 9, MONDAY, 1), NYSE_CLOSED, "Labor Day", false);
    nyse_date thanksgiving = nth_weekday(year, 11, THURSDAY, 4);
    add(list, thanksgiving, NYSE_CLOSED, "Thanksgiving Day", false);
    add(list, nyse_date_add(thanksgiving, 1), NYSE_EARLY_CLOSE, "Day after Thanksgiving",
        false);

    /* Christmas Eve closes early when it is Monday to Thursday; on a Friday
     * it is the observed Christmas Day. */
    nyse_date christmas_eve = {year, 12, 24};
    if (monday_to_thursday(christmas_eve))
        add(list, christmas_eve, NYSE_EARLY_CLOSE, "Christmas Eve", false);
    add_fixed(list, year, 12, 25, "Christmas Day");
}

static bool year_supported(int year)
{
    return year >= NYSE_YEAR_MIN && year <= NYSE_YEAR_MAX;
}

static bool kinds_valid(unsigned kinds)
{
    return (kinds & (NYSE_CLOSED | NYSE_EARLY_CLOSE)) != 0 &&
           (kinds & ~(unsigned)(NYSE_CLOSED | NYSE_EARLY_CLOSE)) == 0;
}

int nyse_calendar(int year, unsigned kinds, nyse_holiday *out, int max)
{
    if (!year_supported(year) || !kinds_valid(kinds) || max < 0 || (out == NULL && max > 0))
        return -1;
    year_list list;
    build_year(year, &list);
    int n = 0;
    for (int i = 0; i < list.count; i++) {
        if (!(list.entry[i].kind & kinds))
            continue;
        if (n < max)
            out[n] = list.entry[i];
        n++;
    }
    return n;
}

int nyse_holidays(int year, nyse_holiday *out, int max)
{
    return nyse_calendar(year, NYSE_CLOSED, out, max);
}

int nyse_window(nyse_date start, int days_ahead, unsigned kinds, nyse_holiday *out, int max)
{
    if (!nyse_date_valid(start.year, start.month, start.day) || !year_supported(start.year) ||
        days_ahead < 0 || days_ahead > NYSE_WINDOW_MAX_DAYS || !kinds_valid(kinds) || max < 0 ||
        (out == NULL && max > 0))
        return -1;
    nyse_date end = nyse_date_add(start, days_ahead);
    if (!year_supported(end.year))
        return -1;
    int n = 0;
    for (int year = start.year; year <= end.year; year++) {
        year_list list;
        build_year(year, &list);
        for (int i = 0; i < list.count; i++) {
            const nyse_holiday *h = &list.entry[i];
            if (!(h->kind & kinds) || nyse_date_cmp(h->date, start) < 0 ||
                nyse_date_cmp(h->date, end) > 0)
                continue;
            if (n < max)
                out[n] = *h;
            n++;
        }
    }
    return n;
}

/* The kind of a day: 0 for a regular weekday, NYSE_CLOSED for a weekend or
 * a closure, NYSE_EARLY_CLOSE; -1 for an invalid or unsupported date. */
static int day_kind(int year, int month, int day)
{
    if (!year_supported(year) || !nyse_date_valid(year, month, day))
        return -1;
    nyse_date date = {year, month, day};
    int wd = nyse_weekday(date);
    if (wd == SATURDAY || wd == SUNDAY)
        return NYSE_CLOSED;
    /* Observed dates never leave their year (see nyse_calendar), so the
     * year's own list is enough. */
    year_list list;
    build_year(year, &list);
    for (int i = 0; i < list.count; i++)
        if (nyse_date_cmp(list.entry[i].date, date) == 0)
            return (int)list.entry[i].kind;
    return 0;
}

bool nyse_is_trading_day(int year, int month, int day)
{
    int kind = day_kind(year, month, day);
    return kind == 0 || kind == NYSE_EARLY_CLOSE;
}

int nyse_close_minutes(int year, int month, int day)
{
    int kind = day_kind(year, month, day);
    if (kind == 0)
        return REGULAR_CLOSE;
    return kind == NYSE_EARLY_CLOSE ? EARLY_CLOSE : -1;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

nyse_date nyse_date_in_new_york(int64_t unix_seconds)
{
    /* Eastern Standard Time is UTC-5; daylight time (UTC-4) runs from 2:00
     * EST on the second Sunday of March to 2:00 EDT on the first Sunday of
     * November, that is 07:00 and 06:00 UTC. Around the UTC new year it is
     * always standard time, so the UTC year picks the right transitions. */
    int year = nyse_date_from_days(floor_div(unix_seconds, 86400)).year;
    int64_t dst_start = nyse_date_to_days(nth_weekday(year, 3, SUNDAY, 2)) * 86400 + 7 * 3600;
    int64_t dst_end = nyse_date_to_days(nth_weekday(year, 11, SUNDAY, 1)) * 86400 + 6 * 3600;
    int64_t offset =
        unix_seconds >= dst_start && unix_seconds < dst_end ? -4 * 3600 : -5 * 3600;
    return nyse_date_from_days(floor_div(unix_seconds + offset, 86400));
}

char *nyse_date_format(nyse_date date, char buf[static 11])
{
    if (date.year < 0 || date.year > 9999 || !nyse_date_valid(date.year, date.month, date.day))
        snprintf(buf, 11, "invalid");
    else
        snprintf(buf, 11, "%04d-%02d-%02d", date.year, date.month, date.day);
    return buf;
}

static bool digits(const char *s, size_t n, int *value_r)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *value_r = v;
    return true;
}

bool nyse_date_parse(const char *text, nyse_date *date_r)
{
    nyse_date d;
    if (text == NULL || strlen(text) != 10 || text[4] != '-' || text[7] != '-' ||
        !digits(text, 4, &d.year) || !digits(text + 5, 2, &d.month) ||
        !digits(text + 8, 2, &d.day) || !nyse_date_valid(d.year, d.month, d.day))
        return false;
    *date_r = d;
    return true;
}
