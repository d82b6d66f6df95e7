/* The NYSE calendar of the MarketPulse example against the exchange's
 * published holiday lists. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../examples/marketpulse/nyse-calendar.h"

typedef struct expected {
    const char *date;
    const char *name;
    bool observed;
} expected;

/* The holidays the exchange published for the years checked, in order. */
static const expected published[] = {
    {"2022-01-17", "Martin Luther King Jr. Day", false},
    {"2022-02-21", "Washington's Birthday (Presidents' Day)", false},
    {"2022-04-15", "Good Friday", false},
    {"2022-05-30", "Memorial Day", false},
    {"2022-06-20", "Juneteenth National Independence Day", true},
    {"2022-07-04", "Independence Day", false},
    {"2022-09-05", "Labor Day", false},
    {"2022-11-24", "Thanksgiving Day", false},
    {"2022-12-26", "Christmas Day", true},
    {"2025-01-01", "New Year's Day", false},
    {"2025-01-20", "Martin Luther King Jr. Day", false},
    {"2025-02-17", "Washington's Birthday (Presidents' Day)", false},
    {"2025-04-18", "Good Friday", false},
    {"2025-05-26", "Memorial Day", false},
    {"2025-06-19", "Juneteenth National Independence Day", false},
    {"2025-07-04", "Independence Day", false},
    {"2025-09-01", "Labor Day", false},
    {"2025-11-27", "Thanksgiving Day", false},
    {"2025-12-25", "Christmas Day", false},
    {"2026-01-01", "New Year's Day", false},
    {"2026-01-19", "Martin Luther King Jr. Day", false},
    {"2026-02-16", "Washington's Birthday (Presidents' Day)", false},
    {"2026-04-03", "Good Friday", false},
    {"2026-05-25", "Memorial Day", false},
    {"2026-06-19", "Juneteenth National Independence Day", false},
    {"2026-07-03", "Independence Day", true}, /* July 4 is a Saturday */
    {"2026-09-07", "Labor Day", false},
    {"2026-11-26", "Thanksgiving Day", false},
    {"2026-12-25", "Christmas Day", false},
    {"2027-01-01", "New Year's Day", false},
    {"2027-01-18", "Martin Luther King Jr. Day", false},
    {"2027-02-15", "Washington's Birthday (Presidents' Day)", false},
    {"2027-03-26", "Good Friday", false},
    {"2027-05-31", "Memorial Day", false},
    {"2027-06-18", "Juneteenth National Independence Day", true}, /* Saturday */
    {"2027-07-05", "Independence Day", true},                     /* Sunday */
    {"2027-09-06", "Labor Day", false},
    {"2027-11-25", "Thanksgiving Day", false},
    {"2027-12-24", "Christmas Day", true}, /* Saturday */
};

/* The holidays of year must be those the exchange published (published[]),
 * each a closed day. */
static void check_year(int year)
{
    char prefix[8], buf[11];
    snprintf(prefix, sizeof(prefix), "%d-", year);
    const expected *want = NULL;
    int count = 0;
    for (size_t i = 0; i < sizeof(published) / sizeof(published[0]); i++)
        if (strncmp(published[i].date, prefix, 5) == 0) {
            want = want != NULL ? want : &published[i];
            count++;
        }
    assert_non_null(want);
    nyse_holiday got[NYSE_MAX_PER_YEAR];
    int n = nyse_holidays(year, got, NYSE_MAX_PER_YEAR);
    if (n != count) {
        for (int i = 0; i < n && i < NYSE_MAX_PER_YEAR; i++)
            print_message("%d: %s %s\n", year, nyse_date_format(got[i].date, buf), got[i].name);
    }
    assert_int_equal(n, count);
    for (int i = 0; i < count; i++) {
        assert_string_equal(nyse_date_format(got[i].date, buf), want[i].date);
        assert_string_equal(got[i].name, want[i].name);
        assert_int_equal(got[i].kind, NYSE_CLOSED);
        assert_int_equal(got[i].observed, want[i].observed);
        nyse_date d = got[i].date;
        assert_false(nyse_is_trading_day(d.year, d.month, d.day));
        assert_int_equal(nyse_close_minutes(d.year, d.month, d.day), -1);
    }
}

/* https://www.nyse.com/markets/hours-calendars. 9 January 2025, the national
 * day of mourning for President Carter, was a one-off closing, not a rule. */
static void test_2025(void **state)
{
    (void)state;
    check_year(2025);
    assert_true(nyse_is_trading_day(2025, 1, 9)); /* see above */
}

static void test_2026(void **state)
{
    (void)state;
    check_year(2026);
    /* The workshop's "Monday, Feb 22: Presidents' Day" is a Sunday. */
    assert_int_equal(nyse_weekday((nyse_date){2026, 2, 22}), 0);
    assert_false(nyse_is_trading_day(2026, 2, 22));
    assert_true(nyse_is_trading_day(2026, 2, 23));
}

static void test_2027(void **state)
{
    (void)state;
    check_year(2027);
}

/* New Year's Day 2022 was a Saturday: the exchange traded on Friday
 * 31 December 2021 and on Monday 3 January 2022. Christmas 2022 was a Sunday
 * and Juneteenth, in its first year, a Sunday too. */
static void test_2022_new_year_on_saturday(void **state)
{
    (void)state;
    check_year(2022);
    assert_true(nyse_is_trading_day(2021, 12, 31));
    assert_true(nyse_is_trading_day(2022, 1, 3));
    nyse_holiday h[NYSE_MAX_PER_YEAR];
    int n = nyse_holidays(2021, h, NYSE_MAX_PER_YEAR);
    assert_true(n > 0);
    assert_int_equal(h[n - 1].date.month, 12);
    assert_int_equal(h[n - 1].date.day, 24); /* Christmas 2021, a Saturday */
    /* 2028 opens the same way. */
    n = nyse_holidays(2028, h, NYSE_MAX_PER_YEAR);
    assert_int_equal(n, 9);
    assert_string_equal(h[0].name, "Martin Luther King Jr. Day");
    assert_true(nyse_is_trading_day(2027, 12, 31));
}

/* New Year's Day on a Sunday is observed on Monday 2 January (2017, 2023). */
static void test_new_year_on_sunday(void **state)
{
    (void)state;
    nyse_holiday h[NYSE_MAX_PER_YEAR];
    char buf[11];
    assert_true(nyse_holidays(2023, h, NYSE_MAX_PER_YEAR) > 0);
    assert_string_equal(nyse_date_format(h[0].date, buf), "2023-01-02");
    assert_string_equal(h[0].name, "New Year's Day");
    assert_true(h[0].observed);
    assert_false(nyse_is_trading_day(2023, 1, 2));
    assert_true(nyse_is_trading_day(2022, 12, 30));
}

/* Juneteenth before 2022 and Martin Luther King Jr. Day before 1998 were
 * trading days. */
static void test_holidays_start_in_their_year(void **state)
{
    (void)state;
    assert_true(nyse_is_trading_day(2021, 6, 18));
    assert_int_equal(nyse_holidays(2021, NULL, 0), 9);
    assert_true(nyse_is_trading_day(1997, 1, 20));
    assert_false(nyse_is_trading_day(1998, 1, 19));
    assert_int_equal(nyse_holidays(1997, NULL, 0), 8);
}

static void test_easter(void **state)
{
    (void)state;
    static const struct {
        int year;
        const char *date;
    } known[] = {
        {1971, "1971-04-11"}, {1981, "1981-04-19"},
        {2000, "2000-04-23"}, {2008, "2008-03-23"}, /* earliest in a century: March 23 */
        {2011, "2011-04-24"}, {2019, "2019-04-21"},
        {2024, "2024-03-31"}, {2025, "2025-04-20"},
        {2026, "2026-04-05"}, {2027, "2027-03-28"},
        {2038, "2038-04-25"}, /* the latest possible date */
        {2049, "2049-04-18"}, {2100, "2100-03-28"},
        {2160, "2160-03-23"}, {2200, "2200-04-06"},
        {1818, "1818-03-22"}, {2285, "2285-03-22"}, /* the earliest possible date */
    };
    char buf[11];
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        nyse_date easter = nyse_easter(known[i].year);
        assert_string_equal(nyse_date_format(easter, buf), known[i].date);
        assert_int_equal(nyse_weekday(easter), 0);
    }
    /* Every Easter is a Sunday between March 22 and April 25, and Good
     * Friday closes the exchange two days before it. */
    for (int year = NYSE_YEAR_MIN; year <= NYSE_YEAR_MAX; year++) {
        nyse_date easter = nyse_easter(year);
        assert_int_equal(nyse_weekday(easter), 0);
        assert_true((easter.month == 3 && easter.day >= 22) ||
                    (easter.month == 4 && easter.day <= 25));
        nyse_date good_friday = nyse_date_add(easter, -2);
        assert_false(nyse_is_trading_day(good_friday.year, good_friday.month, good_friday.day));
    }
}

/* Properties of every supported year: 7 (before 1998, New Year's Day on a
 * Saturday) to 10 closures, all weekdays, in order, each a non-trading day;
 * early closes on weekdays that trade. */
static void test_every_year(void **state)
{
    (void)state;
    for (int year = NYSE_YEAR_MIN; year <= NYSE_YEAR_MAX; year++) {
        nyse_holiday h[NYSE_MAX_PER_YEAR];
        int n = nyse_calendar(year, NYSE_CLOSED | NYSE_EARLY_CLOSE, h, NYSE_MAX_PER_YEAR);
        assert_true(n >= 8 && n <= 13);
        int closed = 0, early = 0;
        for (int i = 0; i < n; i++) {
            nyse_date d = h[i].date;
            assert_int_equal(d.year, year);
            int wd = nyse_weekday(d);
            assert_true(wd >= 1 && wd <= 5);
            if (i > 0)
                assert_true(nyse_date_cmp(h[i - 1].date, d) < 0);
            if (h[i].kind == NYSE_CLOSED) {
                closed++;
                assert_false(nyse_is_trading_day(d.year, d.month, d.day));
            } else {
                early++;
                assert_int_equal(h[i].kind, NYSE_EARLY_CLOSE);
                assert_true(nyse_is_trading_day(d.year, d.month, d.day));
                assert_int_equal(nyse_close_minutes(d.year, d.month, d.day), 13 * 60);
            }
        }
        assert_int_equal(closed, nyse_holidays(year, NULL, 0));
        assert_true(closed >= 7 && closed <= 10);
        assert_true(early >= 1 && early <= 3);
    }
}

static void test_early_closes(void **state)
{
    (void)state;
    static const struct {
        int year;
        const char *dates[3];
    } want[] = {
        {2025, {"2025-07-03", "2025-11-28", "2025-12-24"}},
        {2026, {"2026-11-27", "2026-12-24", NULL}}, /* July 3 is a closure */
        {2027, {"2027-11-26", NULL, NULL}},         /* December 24 is a closure */
        {2024, {"2024-07-03", "2024-11-29", "2024-12-24"}},
        {2022, {"2022-11-25", NULL, NULL}}, /* July 3 and December 24 on weekends */
    };
    char buf[11];
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        nyse_holiday h[NYSE_MAX_PER_YEAR];
        int n = nyse_calendar(want[i].year, NYSE_EARLY_CLOSE, h, NYSE_MAX_PER_YEAR);
        int count = 0;
        while (count < 3 && want[i].dates[count] != NULL)
            count++;
        assert_int_equal(n, count);
        for (int j = 0; j < n; j++) {
            assert_string_equal(nyse_date_format(h[j].date, buf), want[i].dates[j]);
            assert_int_equal(h[j].kind, NYSE_EARLY_CLOSE);
        }
    }
    assert_int_equal(nyse_close_minutes(2025, 11, 28), 13 * 60);
    assert_int_equal(nyse_close_minutes(2025, 11, 26), 16 * 60);
    assert_int_equal(nyse_close_minutes(2025, 11, 29), -1);
}

static void test_weekends_do_not_trade(void **state)
{
    (void)state;
    /* 2 to 8 February 2026, Monday to Sunday. */
    bool want[7] = {true, true, true, true, true, false, false};
    for (int i = 0; i < 7; i++)
        assert_int_equal(nyse_is_trading_day(2026, 2, 2 + i), want[i]);
    int64_t from = nyse_date_to_days((nyse_date){1971, 1, 1});
    int64_t to = nyse_date_to_days((nyse_date){2200, 12, 31});
    for (int64_t day = from; day <= to; day++) {
        nyse_date d = nyse_date_from_days(day);
        int wd = nyse_weekday(d);
        if (wd == 0 || wd == 6) {
            assert_false(nyse_is_trading_day(d.year, d.month, d.day));
            assert_int_equal(nyse_close_minutes(d.year, d.month, d.day), -1);
        }
    }
}

static void test_invalid_input(void **state)
{
    (void)state;
    nyse_holiday h[NYSE_MAX_PER_YEAR];
    assert_int_equal(nyse_holidays(NYSE_YEAR_MIN - 1, h, NYSE_MAX_PER_YEAR), -1);
    assert_int_equal(nyse_holidays(NYSE_YEAR_MAX + 1, h, NYSE_MAX_PER_YEAR), -1);
    assert_int_equal(nyse_holidays(2026, NULL, 3), -1);
    assert_int_equal(nyse_holidays(2026, h, -1), -1);
    assert_int_equal(nyse_calendar(2026, 0, h, NYSE_MAX_PER_YEAR), -1);
    assert_int_equal(nyse_calendar(2026, 4, h, NYSE_MAX_PER_YEAR), -1);
    assert_false(nyse_is_trading_day(2026, 2, 29));
    assert_false(nyse_is_trading_day(2026, 13, 1));
    assert_false(nyse_is_trading_day(2026, 4, 31));
    assert_false(nyse_is_trading_day(1969, 6, 2));
    assert_false(nyse_is_trading_day(2201, 6, 2));
    assert_true(nyse_is_trading_day(2024, 2, 29));
    assert_int_equal(nyse_close_minutes(2026, 0, 1), -1);
    /* Too small an array: the count needed comes back, nothing overflows. */
    h[2].name = "untouched";
    assert_int_equal(nyse_holidays(2026, h, 2), 10);
    assert_string_equal(h[1].name, "Martin Luther King Jr. Day");
    assert_string_equal(h[2].name, "untouched");
}

static int window(const char *start, int days, unsigned kinds, nyse_holiday *h, int max)
{
    nyse_date d;
    if (!nyse_date_parse(start, &d))
        fail_msg("bad date %s", start);
    return nyse_window(d, days, kinds, h, max);
}

static void test_window(void **state)
{
    (void)state;
    nyse_holiday h[40];
    char buf[11];

    /* The workshop's query on 10 February 2026: the next week holds
     * Presidents' Day, Monday 16 February. */
    assert_int_equal(window("2026-02-10", 7, NYSE_CLOSED, h, 40), 1);
    assert_string_equal(nyse_date_format(h[0].date, buf), "2026-02-16");
    assert_string_equal(h[0].name, "Washington's Birthday (Presidents' Day)");
    /* Both ends are included. */
    assert_int_equal(window("2026-02-09", 7, NYSE_CLOSED, h, 40), 1);
    assert_int_equal(window("2026-02-08", 7, NYSE_CLOSED, h, 40), 0);
    assert_int_equal(window("2026-02-16", 0, NYSE_CLOSED, h, 40), 1);
    assert_int_equal(window("2026-02-17", 7, NYSE_CLOSED, h, 40), 0);
    /* The workshop's own period, 18 to 25 February 2026, has none. */
    assert_int_equal(window("2026-02-18", 7, NYSE_CLOSED, h, 40), 0);

    /* Thanksgiving week, with and without the early close. */
    assert_int_equal(window("2026-11-23", 6, NYSE_CLOSED, h, 40), 1);
    assert_int_equal(window("2026-11-23", 6, NYSE_CLOSED | NYSE_EARLY_CLOSE, h, 40), 2);
    assert_string_equal(nyse_date_format(h[1].date, buf), "2026-11-27");
    assert_int_equal(h[1].kind, NYSE_EARLY_CLOSE);
    assert_int_equal(window("2026-11-23", 6, NYSE_EARLY_CLOSE, h, 40), 1);

    /* Across the new year, in date order. */
    assert_int_equal(window("2026-12-20", 14, NYSE_CLOSED | NYSE_EARLY_CLOSE, h, 40), 3);
    assert_string_equal(nyse_date_format(h[0].date, buf), "2026-12-24");
    assert_string_equal(nyse_date_format(h[1].date, buf), "2026-12-25");
    assert_string_equal(nyse_date_format(h[2].date, buf), "2027-01-01");
    /* 2021-12-31 is no closure even though New Year's 2022 is a Saturday. */
    assert_int_equal(window("2021-12-27", 10, NYSE_CLOSED, h, 40), 0);

    /* A whole year, and the longest window (366 days) over three years. */
    assert_int_equal(window("2026-01-01", 364, NYSE_CLOSED, h, 40), 10);
    assert_int_equal(window("2026-12-31", NYSE_WINDOW_MAX_DAYS, NYSE_CLOSED, h, 40), 10);
    assert_string_equal(nyse_date_format(h[0].date, buf), "2027-01-01");
    assert_int_equal(window("2027-12-31", NYSE_WINDOW_MAX_DAYS, NYSE_CLOSED, h, 40), 9);
    assert_int_equal(window("2024-12-31", NYSE_WINDOW_MAX_DAYS, NYSE_CLOSED, h, 40), 11);
    assert_int_equal(window("2026-01-01", 364, NYSE_CLOSED | NYSE_EARLY_CLOSE, h, 40), 12);

    /* Bounds. */
    assert_int_equal(window("2026-02-10", -1, NYSE_CLOSED, h, 40), -1);
    assert_int_equal(window("2026-02-10", NYSE_WINDOW_MAX_DAYS + 1, NYSE_CLOSED, h, 40), -1);
    assert_int_equal(window("2200-12-25", 6, NYSE_CLOSED, h, 40), 1);
    assert_int_equal(window("2200-12-25", 7, NYSE_CLOSED, h, 40), -1);
    assert_int_equal(window("2026-02-10", 7, 0, h, 40), -1);
    assert_int_equal(window("2026-01-01", 364, NYSE_CLOSED, h, 3), 10);
    assert_int_equal(window("2026-01-01", 364, NYSE_CLOSED, NULL, 0), 10);
    assert_int_equal(nyse_window((nyse_date){2026, 2, 30}, 7, NYSE_CLOSED, h, 40), -1);
    assert_int_equal(nyse_window((nyse_date){1970, 12, 31}, 7, NYSE_CLOSED, h, 40), -1);
}

static void test_dates(void **state)
{
    (void)state;
    char buf[11];
    nyse_date d;
    assert_int_equal(nyse_date_to_days((nyse_date){1970, 1, 1}), 0);
    assert_int_equal(nyse_date_to_days((nyse_date){2000, 3, 1}), 11017);
    assert_int_equal(nyse_date_to_days((nyse_date){1969, 12, 31}), -1);
    assert_int_equal(nyse_weekday((nyse_date){1970, 1, 1}), 4);
    assert_int_equal(nyse_weekday((nyse_date){1969, 12, 28}), 0);
    assert_int_equal(nyse_weekday((nyse_date){2026, 2, 16}), 1);
    for (int64_t day = -800000; day < 800000; day += 37) {
        d = nyse_date_from_days(day);
        assert_true(nyse_date_valid(d.year, d.month, d.day));
        assert_int_equal(nyse_date_to_days(d), day);
    }
    d = nyse_date_add((nyse_date){2024, 2, 28}, 1);
    assert_string_equal(nyse_date_format(d, buf), "2024-02-29");
    d = nyse_date_add((nyse_date){2100, 2, 28}, 1);
    assert_string_equal(nyse_date_format(d, buf), "2100-03-01");
    d = nyse_date_add((nyse_date){2026, 1, 1}, -1);
    assert_string_equal(nyse_date_format(d, buf), "2025-12-31");

    assert_true(nyse_date_parse("2026-02-16", &d));
    assert_int_equal(d.year, 2026);
    assert_int_equal(d.month, 2);
    assert_int_equal(d.day, 16);
    const char *bad[] = {"",           "2026-2-16", "2026-02-16 ", "2026/02/16", "2026-02-30",
                         "2026-00-10", "20260216",  "2026-02-1x",  "+026-02-16"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(nyse_date_parse(bad[i], &d));
    assert_false(nyse_date_parse(NULL, &d));
    assert_string_equal(nyse_date_format((nyse_date){2026, 2, 30}, buf), "invalid");
}

/* "Today" is New York's date, whatever the host's time zone. */
static void test_new_york_date(void **state)
{
    (void)state;
    char buf[11];
    static const struct {
        int64_t t;
        const char *date;
    } cases[] = {
        {0, "1969-12-31"},          /* 19:00 EST */
        {1771200000, "2026-02-15"}, /* 2026-02-16 00:00 UTC = 19:00 EST the day before */
        {1771218000, "2026-02-16"}, /* 05:00 UTC = midnight EST */
        {1771217999, "2026-02-15"},
        /* Daylight time 2026: 8 March 07:00 UTC to 1 November 06:00 UTC. */
        {1772953199, "2026-03-08"}, /* 06:59:59 UTC, 01:59:59 EST */
        {1773028800, "2026-03-09"}, /* 2026-03-09 04:00 UTC = midnight EDT */
        {1773028799, "2026-03-08"},
        {1781841600, "2026-06-19"}, /* 2026-06-19 04:00 UTC */
        {1793505600, "2026-11-01"}, /* 2026-11-01 04:00 UTC = midnight EDT */
        {1793505599, "2026-10-31"},
        {1793595600, "2026-11-02"}, /* 2026-11-02 05:00 UTC = midnight EST */
        {1793595599, "2026-11-01"},
        {1798779599, "2026-12-31"}, /* 2027-01-01 04:59:59 UTC */
        {1798779600, "2027-01-01"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_string_equal(nyse_date_format(nyse_date_in_new_york(cases[i].t), buf),
                            cases[i].date);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_2025),
        cmocka_unit_test(test_2026),
        cmocka_unit_test(test_2027),
        cmocka_unit_test(test_2022_new_year_on_saturday),
        cmocka_unit_test(test_new_year_on_sunday),
        cmocka_unit_test(test_holidays_start_in_their_year),
        cmocka_unit_test(test_easter),
        cmocka_unit_test(test_every_year),
        cmocka_unit_test(test_early_closes),
        cmocka_unit_test(test_weekends_do_not_trade),
        cmocka_unit_test(test_invalid_input),
        cmocka_unit_test(test_window),
        cmocka_unit_test(test_dates),
        cmocka_unit_test(test_new_york_date),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
