/* The New York Stock Exchange holiday calendar, computed from its rules.
 *
 * Full-day closures (NYSE Rule 7.2): New Year's Day, Martin Luther King Jr.
 * Day (3rd Monday of January, since 1998), Washington's Birthday (3rd Monday
 * of February), Good Friday (two days before Gregorian Easter), Memorial Day
 * (last Monday of May), Juneteenth (June 19, since 2022), Independence Day,
 * Labor Day (1st Monday of September), Thanksgiving Day (4th Thursday of
 * November) and Christmas Day. A fixed-date holiday on a Saturday is observed
 * the Friday before, on a Sunday the Monday after -- except New Year's Day,
 * which on a Saturday is not observed at all (Friday December 31 closes the
 * year's books and stays a trading day).
 *
 * Early closes at 1:00 pm Eastern: the day before Independence Day (when
 * July 3 is Monday to Thursday), the day after Thanksgiving, and Christmas Eve
 * (when December 24 is Monday to Thursday).
 *
 * Only the rules are modelled: one-off closings (national days of mourning
 * such as 9 January 2025, storms, 11 September 2001) and holidays the NYSE
 * has since dropped (Election Day until 1980, Lincoln's Birthday) are not.
 * Years NYSE_YEAR_MIN..NYSE_YEAR_MAX are supported: 1971 is the first year of
 * the Monday holidays (Uniform Monday Holiday Act).
 *
 * Pure C11, no allocation, no global state: every function is reentrant. */
#ifndef MANDATE_EXAMPLES_NYSE_CALENDAR_H
#define MANDATE_EXAMPLES_NYSE_CALENDAR_H

#include <stdbool.h>
#include <stdint.h>

#define NYSE_YEAR_MIN 1971
#define NYSE_YEAR_MAX 2200
/* No year has more entries than this (10 closures and 3 early closes). */
#define NYSE_MAX_PER_YEAR 16
/* The longest window nyse_window accepts. */
#define NYSE_WINDOW_MAX_DAYS 366

typedef struct nyse_date {
    int year, month, day; /* month 1..12, day 1..31 */
} nyse_date;

typedef enum nyse_kind {
    NYSE_CLOSED = 1 << 0,     /* no trading all day */
    NYSE_EARLY_CLOSE = 1 << 1 /* trading ends at 1:00 pm Eastern */
} nyse_kind;

typedef struct nyse_holiday {
    nyse_date date; /* the day the exchange observes it */
    nyse_kind kind;
    const char *name; /* static: "Independence Day", "Christmas Eve", ... */
    bool observed;    /* moved off a weekend: date is not the holiday's own */
} nyse_holiday;

/* True when y-m-d is a real Gregorian date (any year). */
bool nyse_date_valid(int year, int month, int day);
/* Days since 1970-01-01 (negative before it), and back. */
int64_t nyse_date_to_days(nyse_date date);
nyse_date nyse_date_from_days(int64_t days);
/* 0 = Sunday .. 6 = Saturday. */
int nyse_weekday(nyse_date date);
/* date plus n days (n may be negative). */
nyse_date nyse_date_add(nyse_date date, int64_t n);
/* Negative, 0 or positive as a is before, the same day as or after b. */
int nyse_date_cmp(nyse_date a, nyse_date b);

/* Easter Sunday of a Gregorian year (year >= 1583), by the anonymous
 * Gregorian algorithm (Meeus/Jones/Butcher). */
nyse_date nyse_easter(int year);

/* The holidays of one year whose kind is in kinds (NYSE_CLOSED,
 * NYSE_EARLY_CLOSE or both), in date order. Writes at most max entries and,
 * like snprintf, returns how many there are (so a return above max means out
 * was too small); -1 when the year is outside the supported range or kinds
 * names no kind. out may be NULL when max is 0. Only holidays observed within
 * the year are listed: Christmas on a Saturday is observed on December 24 of
 * the same year, and New Year's Day is never observed in the year before. */
int nyse_calendar(int year, unsigned kinds, nyse_holiday *out, int max);
/* The full-day closures of a year: nyse_calendar(year, NYSE_CLOSED, ...). */
int nyse_holidays(int year, nyse_holiday *out, int max);

/* The holidays observed from start to start + days_ahead, both days
 * included, whose kind is in kinds; days_ahead is 0..NYSE_WINDOW_MAX_DAYS.
 * Returns like nyse_calendar: -1 for a bad start date, a bad days_ahead or a
 * window reaching outside the supported years. */
int nyse_window(nyse_date start, int days_ahead, unsigned kinds, nyse_holiday *out, int max);

/* True when the exchange trades on y-m-d (a weekday that is no full-day
 * closure; early-close days are trading days). False for invalid dates and
 * dates outside the supported years. */
bool nyse_is_trading_day(int year, int month, int day);
/* The closing time of a trading day in minutes after midnight Eastern (960
 * for 4:00 pm, 780 for 1:00 pm on an early close); -1 when it does not trade. */
int nyse_close_minutes(int year, int month, int day);

/* The calendar date in New York at a Unix time (seconds since the epoch,
 * UTC), using the US daylight saving time rules in force since 2007. */
nyse_date nyse_date_in_new_york(int64_t unix_seconds);

/* "2026-02-16": buf needs 11 bytes. Returns buf. */
char *nyse_date_format(nyse_date date, char buf[static 11]);
/* Parses exactly "YYYY-MM-DD" (a valid date); false otherwise. */
bool nyse_date_parse(const char *text, nyse_date *date_r);

#endif
