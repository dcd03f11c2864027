//! Parser tests for the calendar criteria `date`, `day_of_week` and `time_of_day`, and the
//! timestamp and clock-time readers they use.

use chrono_tz::Tz;

use super::super::matcher::{parse_clock, parse_timestamp};
use super::*;

#[test]
fn calendar_criteria_parse_into_typed_data() {
    use Criterion as C;
    assert_parses(vec![
        (
            "date: {after: '2024-01-01T00:00:00Z'}",
            C::Date(DateRange {
                after: Some(ts("2024-01-01T00:00:00Z", 1_704_067_200, 0)),
                before: None,
            }),
        ),
        (
            "date: {after: 2024-02-29, before: '2024-03-01T10:30:00.5+02:00'}",
            C::Date(DateRange {
                after: Some(ts("2024-02-29", 1_709_164_800, 0)),
                before: Some(ts(
                    "2024-03-01T10:30:00.5+02:00",
                    1_709_281_800,
                    500_000_000,
                )),
            }),
        ),
        (
            "date: {before: '2024-01-01'}",
            C::Date(DateRange {
                after: None,
                before: Some(ts("2024-01-01", 1_704_067_200, 0)),
            }),
        ),
        ("day_of_week: mon-fri", C::DayOfWeek(days(0b001_1111))),
        (
            "day_of_week: 'Mon,wednesday, SUN'",
            C::DayOfWeek(days(0b100_0101)),
        ),
        ("day_of_week: fri-mon", C::DayOfWeek(days(0b111_0001))),
        ("day_of_week: 'mon-tue,thu'", C::DayOfWeek(days(0b000_1011))),
        ("day_of_week: TUESDAY", C::DayOfWeek(days(0b000_0010))),
        ("day_of_week: '*'", C::DayOfWeek(days(0x7f))),
        (
            "day_of_week: {days: mon-fri, timezone: Europe/Berlin}",
            C::DayOfWeek(Weekdays {
                days: DaySet { bits: 0b001_1111 },
                timezone: Some(Tz::Europe__Berlin),
            }),
        ),
        (
            "day_of_week: {days: sat-sun}",
            C::DayOfWeek(days(0b110_0000)),
        ),
        (
            "time_of_day: {timezone: Europe/Paris, after: '09:00', before: '17:30:15'}",
            C::TimeOfDay(TimeWindow {
                timezone: Tz::Europe__Paris,
                after: Some(32_400),
                before: Some(63_015),
            }),
        ),
        (
            "time_of_day: {after: '22:00', timezone: UTC, before: '06:00'}",
            C::TimeOfDay(TimeWindow {
                timezone: Tz::UTC,
                after: Some(79_200),
                before: Some(21_600),
            }),
        ),
        (
            "time_of_day: {timezone: America/New_York, before: '12:00'}",
            C::TimeOfDay(TimeWindow {
                timezone: Tz::America__New_York,
                after: None,
                before: Some(43_200),
            }),
        ),
    ]);
}

#[test]
fn calendar_criteria_problems_have_exact_paths_and_messages() {
    assert_problems(vec![
        (
            "date: {after: yesterday}",
            vec![s(
                "date.after: \"yesterday\" is not an RFC 3339 timestamp (2024-05-01T09:00:00Z) or a date (2024-05-01)",
            )],
        ),
        (
            "date: {before: [x]}",
            vec![s("date.before: expected a string, found a list")],
        ),
        (
            "date: {}",
            vec![s(
                "date: empty map; expected a map with `after` and/or `before`",
            )],
        ),
        (
            "date: '2024-01-01'",
            vec![s(
                "date: expected a map with `after` and/or `before`, found a string",
            )],
        ),
        (
            "date: {aftr: '2024-01-01'}",
            vec![s("date.aftr: unknown key; did you mean `after`?")],
        ),
        (
            "date: {after: '2024-02-01', before: '2024-01-01'}",
            vec![s("date: `after` must be earlier than `before`")],
        ),
        (
            "date: {after: '2024-01-01', before: '2024-01-01T00:00:00Z'}",
            vec![s("date: `after` must be earlier than `before`")],
        ),
        (
            "day_of_week: funday",
            vec![s(
                "day_of_week: \"funday\" is not a day (mon … sun), a range (mon-fri) or `*`",
            )],
        ),
        (
            "day_of_week: 'mon,,mo-fr'",
            vec![
                s("day_of_week: \"\" is not a day (mon … sun), a range (mon-fri) or `*`"),
                s("day_of_week: \"mo-fr\" is not a day (mon … sun), a range (mon-fri) or `*`"),
            ],
        ),
        (
            "day_of_week: [mon]",
            vec![s(
                "day_of_week: expected a string of days (mon-fri) or a map with `days` and `timezone`, found a list",
            )],
        ),
        (
            "day_of_week: {days: mon, timezone: Mars/Olympus}",
            vec![s(
                "day_of_week.timezone: \"Mars/Olympus\" is not an IANA timezone such as `Europe/Berlin`, `America/New_York` or `UTC`",
            )],
        ),
        (
            "day_of_week: {timezone: UTC}",
            vec![s("day_of_week: missing required key `days`")],
        ),
        (
            "day_of_week: {days: funday, tz: UTC}",
            vec![
                s(
                    "day_of_week.days: \"funday\" is not a day (mon … sun), a range (mon-fri) or `*`",
                ),
                s("day_of_week.tz: unknown key"),
            ],
        ),
        (
            "time_of_day: {timezone: Europe/Berln, after: '09:00'}",
            vec![s(
                "time_of_day.timezone: \"Europe/Berln\" is not an IANA timezone; did you mean `Europe/Berlin`?",
            )],
        ),
        (
            "time_of_day: {timezone: europe/paris, after: '09:00'}",
            vec![s(
                "time_of_day.timezone: \"europe/paris\" is not an IANA timezone; did you mean `Europe/Paris`?",
            )],
        ),
        (
            "time_of_day: {timezone: CEST, after: '09:00'}",
            vec![s(
                "time_of_day.timezone: \"CEST\" is not an IANA timezone; did you mean `CET`?",
            )],
        ),
        (
            "time_of_day: {after: '09:00'}",
            vec![s("time_of_day: missing required key `timezone`")],
        ),
        (
            "time_of_day: {timezone: UTC}",
            vec![s("time_of_day: needs `after` and/or `before`")],
        ),
        (
            "time_of_day: {timezone: '', after: '09:00'}",
            vec![s("time_of_day.timezone: empty string")],
        ),
        (
            "time_of_day: {timezone: UTC, after: '9:00', before: '24:00'}",
            vec![
                s("time_of_day.after: \"9:00\" is not a time of day (HH:MM or HH:MM:SS)"),
                s("time_of_day.before: \"24:00\" is not a time of day (HH:MM or HH:MM:SS)"),
            ],
        ),
        (
            "time_of_day: {timezone: UTC, afer: '10:00'}",
            vec![s("time_of_day.afer: unknown key; did you mean `after`?")],
        ),
        (
            "time_of_day: {timezone: UTC, after: '10:00', before: '10:00'}",
            vec![s("time_of_day: `after` and `before` are equal")],
        ),
        (
            "time_of_day: '09:00'",
            vec![s(
                "time_of_day: expected a map with `after` and/or `before`, found a string",
            )],
        ),
    ]);
}

#[test]
fn calendar_criteria_render_as_ppl_text() {
    assert_renders(&[
        (
            "date: {after: '2024-01-01', before: '2025-01-01T00:00:00Z'}",
            "date after \"2024-01-01\" and before \"2025-01-01T00:00:00Z\"",
        ),
        ("date: {before: '2025-01-01'}", "date before \"2025-01-01\""),
        ("day_of_week: fri-mon", "day_of_week mon,fri,sat,sun"),
        ("day_of_week: mon-sun", "day_of_week *"),
        (
            "day_of_week: {days: mon-fri, timezone: Asia/Tokyo}",
            "day_of_week mon,tue,wed,thu,fri in \"Asia/Tokyo\"",
        ),
        (
            "time_of_day: {timezone: Europe/Paris, after: '09:00', before: '17:30:15'}",
            "time_of_day after 09:00 and before 17:30:15 in \"Europe/Paris\"",
        ),
    ]);
}

#[test]
fn timestamps_are_validated_and_converted() {
    let good = [
        ("1970-01-01", 0, 0),
        ("1970-01-01T00:00:00Z", 0, 0),
        ("1969-12-31T23:59:59Z", -1, 0),
        ("2024-02-29", 1_709_164_800, 0),
        ("2000-03-01T01:02:03+01:00", 951_868_923, 0),
        ("1900-03-01T00:00:00-05:30", -2_203_871_400, 0),
        (
            "2024-01-01t00:00:00.123456789123z",
            1_704_067_200,
            123_456_789,
        ),
        ("2024-01-01T00:00:00.01Z", 1_704_067_200, 10_000_000),
    ];
    for (text, secs, nanos) in good {
        assert_eq!(parse_timestamp(text), Some(ts(text, secs, nanos)), "{text}");
    }
    let bad = [
        "",
        "2024-02-30",
        "2023-02-29",
        "2024-13-01",
        "2024-00-10",
        "2024-01-00",
        "2024-1-01",
        "2024/01/01",
        "2024-01-01T",
        "2024-01-01Z",
        "2024-01-01T10:00:00",
        "2024-01-01T24:00:00Z",
        "2024-01-01T10:60:00Z",
        "2024-01-01T10:00:60Z",
        "2024-01-01T10:00:00.Z",
        "2024-01-01T10:00:00+0100",
        "2024-01-01T10:00:00+24:00",
        "2024-01-01 10:00:00Z",
        "2024-01-01T10:00:00Zjunk",
        "2024-01-01T10:00Z",
        "２０２４-01-01",
        "2024-01-01é",
    ];
    for text in bad {
        assert_eq!(parse_timestamp(text), None, "{text}");
    }
}

#[test]
fn clock_times_are_validated_and_converted() {
    for (text, secs) in [
        ("00:00", 0),
        ("23:59:59", 86_399),
        ("09:30", 34_200),
        ("12:00:01", 43_201),
    ] {
        assert_eq!(parse_clock(text), Some(secs), "{text}");
    }
    for text in [
        "",
        "9:30",
        "24:00",
        "12:60",
        "12:00:60",
        "12:00:",
        "12-00",
        "12:00:00:00",
        "ab:cd",
        "12:0é",
    ] {
        assert_eq!(parse_clock(text), None, "{text}");
    }
}
