//! The scheduler with a clock the tests hold: intervals, cron in time zones across DST
//! changes, restart catch-up, no double run — against the real store, without sleeping.

#[path = "support/backends.rs"]
mod backends;
use backends::TestDb;

use chrono::{DateTime, Duration, Utc};
use sparky::compile::compile;
use sparky::daemon::scheduler::{Due, Fired, Schedule, due, tick};
use sparky::diagnostics::SourceFile;
use sparky::graph::RuleGraph;
use sparky::store::Store;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// A rule graph of one playbook per `(id, trigger)`.
fn graph(playbooks: &[(&str, &str)]) -> RuleGraph {
    let files: Vec<_> = playbooks
        .iter()
        .map(|(id, trigger)| {
            let text = format!(
                "/// Runs on a schedule.\nplaybook {id} \"Scheduled {id}\" {{\n  status active\n  owner \"team:platform\"\n  on schedule {trigger}\n  l3 priority P4\n}}\n"
            );
            SourceFile::new(format!("{id}.sparky"), &text)
        })
        .collect();
    let compiled = compile(&files);
    assert!(compiled.diagnostics.iter().all(|d| !d.is_error()), "{:?}", compiled.diagnostics);
    RuleGraph::build(&compiled)
}

fn schedule(trigger: &str) -> Schedule {
    let g = graph(&[("PB-990", trigger)]);
    Schedule::of(&g.playbooks()[0]).unwrap()
}

async fn store(on: &str) -> (TestDb, Store) {
    let db = TestDb::on(on, "scheduler").await;
    let store = Store::open(&db.url).await.unwrap();
    (db, store)
}

#[test]
fn interval_slots_are_multiples_of_the_period_since_the_epoch() {
    let s = schedule("every 1h");
    assert_eq!(s.latest(at("2026-11-29T10:59:59Z")), Some(at("2026-11-29T10:00:00Z")));
    assert_eq!(s.latest(at("2026-11-29T11:00:00Z")), Some(at("2026-11-29T11:00:00Z")));
    assert_eq!(s.next_after(at("2026-11-29T11:00:00Z")), Some(at("2026-11-29T12:00:00Z")));
    let six = Duration::hours(6);
    let last = at("2026-11-29T10:00:00Z");
    assert_eq!(due(&s, last, at("2026-11-29T10:59:00Z"), six), Due::Wait { next: Some(at("2026-11-29T11:00:00Z")) });
    assert_eq!(
        due(&s, last, at("2026-11-29T11:00:00Z"), six),
        Due::Run { slot: at("2026-11-29T11:00:00Z"), missed: 0 }
    );
    // Down from 10:30 to 13:20: one run, for 13:00, with 11:00 and 12:00 coalesced into it.
    assert_eq!(
        due(&s, last, at("2026-11-29T13:20:00Z"), six),
        Due::Run { slot: at("2026-11-29T13:00:00Z"), missed: 2 }
    );
}

#[test]
fn cron_runs_in_its_time_zone_across_dst_changes() {
    // 09:00 in Paris: 08:00Z in winter (UTC+1), 07:00Z in summer (UTC+2).
    let s = schedule("cron \"0 9 * * *\" tz \"Europe/Paris\"");
    assert_eq!(s.next_after(at("2026-03-28T12:00:00Z")), Some(at("2026-03-29T07:00:00Z")));
    assert_eq!(s.next_after(at("2026-10-24T12:00:00Z")), Some(at("2026-10-25T08:00:00Z")));

    // 02:30 in Paris: on 2026-03-29 the clocks jump from 02:00 to 03:00, so 02:30 does not
    // exist that day — the run happens at the first instant after the jump (03:00 CEST),
    // once; on 2026-10-25 they fall back from 03:00 to 02:00, and 02:30 happens twice — the
    // schedule runs once.
    let s = schedule("cron \"30 2 * * *\" tz \"Europe/Paris\"");
    let mut runs = Vec::new();
    let mut t = at("2026-03-27T00:00:00Z");
    while let Some(n) = s.next_after(t) {
        if n > at("2026-03-31T00:00:00Z") {
            break;
        }
        runs.push(n);
        t = n;
    }
    assert_eq!(
        runs,
        [
            at("2026-03-27T01:30:00Z"),
            at("2026-03-28T01:30:00Z"),
            at("2026-03-29T01:00:00Z"),
            at("2026-03-30T00:30:00Z")
        ]
    );
    let mut fall = Vec::new();
    let mut t = at("2026-10-24T12:00:00Z");
    while let Some(n) = s.next_after(t) {
        if n > at("2026-10-26T12:00:00Z") {
            break;
        }
        fall.push(n);
        t = n;
    }
    let on_the_25th = fall.iter().filter(|r| r.date_naive() == at("2026-10-25T00:00:00Z").date_naive()).count();
    assert_eq!(on_the_25th, 1, "the repeated hour runs once: {fall:?}");
}

/// Every slot of `s` in `[from, to]`.
fn slots(s: &Schedule, from: &str, to: &str) -> Vec<DateTime<Utc>> {
    let mut out = Vec::new();
    let mut t = at(from);
    while let Some(n) = s.next_after(t) {
        if n > at(to) {
            break;
        }
        out.push(n);
        t = n;
    }
    out
}

#[test]
fn cron_times_with_lists_run_once_each_across_dst_changes() {
    // Two fixed hours: the 02:00 the spring jump skips runs at 03:00 CEST (01:00Z); on the
    // fall-back night 02:00 happens twice and runs once (its first occurrence, 00:00Z).
    let s = schedule("cron \"0 2,14 * * *\" tz \"Europe/Paris\"");
    assert_eq!(
        slots(&s, "2026-03-28T23:00:00Z", "2026-03-29T23:00:00Z"),
        [at("2026-03-29T01:00:00Z"), at("2026-03-29T12:00:00Z")]
    );
    assert_eq!(
        slots(&s, "2026-10-24T23:00:00Z", "2026-10-25T23:00:00Z"),
        [at("2026-10-25T00:00:00Z"), at("2026-10-25T13:00:00Z")]
    );
    // Two minutes in the skipped hour run once at the jump; in the repeated hour, once each.
    let s = schedule("cron \"0,30 2 * * *\" tz \"Europe/Paris\"");
    assert_eq!(slots(&s, "2026-03-28T23:00:00Z", "2026-03-29T23:00:00Z"), [at("2026-03-29T01:00:00Z")]);
    assert_eq!(
        slots(&s, "2026-10-24T23:00:00Z", "2026-10-25T23:00:00Z"),
        [at("2026-10-25T00:00:00Z"), at("2026-10-25T00:30:00Z")]
    );
    // `latest` agrees with `next_after` (the scheduler uses both).
    assert_eq!(s.latest(at("2026-10-25T01:45:00Z")), Some(at("2026-10-25T00:30:00Z")));
    assert_eq!(s.latest(at("2026-03-29T01:10:00Z")), Some(at("2026-03-29T01:00:00Z")));
}

#[tokio::test]
async fn a_held_clock_through_both_dst_nights_fires_each_slot_once() {
    for on in backends::names("a_held_clock_through_both_dst_nights_fires_each_slot_once") {
        eprintln!("a_held_clock_through_both_dst_nights_fires_each_slot_once on {on}");
        let (_dir, store) = store(on).await;
        let g = graph(&[("PB-996", "cron \"0,30 2 * * *\" tz \"Europe/Paris\"")]);
        for (from, expected) in [("2026-03-28T22:00:00Z", 1), ("2026-10-24T22:00:00Z", 2)] {
            let mut now = at(from);
            let mut ran = 0;
            // Every five minutes through the night.
            for _ in 0..(6 * 12) {
                let (fired, _) = tick(&store, &g, Duration::hours(6), now).await.unwrap();
                ran += fired.iter().filter(|f| f.ran).count();
                now += Duration::minutes(5);
            }
            assert_eq!(ran, expected, "the night of {from}");
        }
    }
}

#[tokio::test]
async fn a_changed_schedule_or_a_clock_set_back_starts_again_and_a_disabled_one_waits() {
    for on in backends::names("a_changed_schedule_or_a_clock_set_back_starts_again_and_a_disabled_one_waits") {
        eprintln!("a_changed_schedule_or_a_clock_set_back_starts_again_and_a_disabled_one_waits on {on}");
        let (_dir, store) = store(on).await;
        let six = Duration::hours(6);
        tick(&store, &graph(&[("PB-997", "every 2h")]), six, at("2026-11-29T10:30:00Z")).await.unwrap();
        // Edited to every hour at 11:30: it starts again with its next slot (12:00), not with
        // the 11:00 slot that passed before the edit.
        let hourly = graph(&[("PB-997", "every 1h")]);
        let (fired, next) = tick(&store, &hourly, six, at("2026-11-29T11:30:00Z")).await.unwrap();
        assert!(fired.is_empty(), "{fired:?}");
        assert_eq!(next, Some(at("2026-11-29T12:00:00Z")));
        // The clock was a day ahead and fired a slot there; set back, the schedule goes on.
        tick(&store, &hourly, six, at("2026-11-30T12:00:00Z")).await.unwrap();
        let (fired, _) = tick(&store, &hourly, six, at("2026-11-29T12:00:00Z")).await.unwrap();
        assert!(fired.is_empty(), "the restart point is the current slot");
        let (fired, _) = tick(&store, &hourly, six, at("2026-11-29T13:00:00Z")).await.unwrap();
        assert_eq!(fired.len(), 1, "{fired:?}");
        // Disabled for three hours, then enabled again: it does not catch up what it skipped.
        let text = "/// Off.\nplaybook PB-997 \"Scheduled PB-997\" {\n  status disabled\n  owner \"team:platform\"\n  on schedule every 1h\n  l3 priority P4\n}\n";
        let compiled = compile(&[SourceFile::new("PB-997.sparky", text)]);
        let disabled = RuleGraph::build(&compiled);
        for h in 14..=16 {
            let (fired, _) = tick(&store, &disabled, six, at(&format!("2026-11-29T{h}:00:00Z"))).await.unwrap();
            assert!(fired.is_empty());
        }
        let (fired, next) = tick(&store, &hourly, six, at("2026-11-29T16:30:00Z")).await.unwrap();
        assert!(fired.is_empty(), "{fired:?}");
        assert_eq!(next, Some(at("2026-11-29T17:00:00Z")));
    }
}

#[tokio::test]
async fn a_new_schedule_starts_with_its_next_slot_and_a_slot_fires_once() {
    for on in backends::names("a_new_schedule_starts_with_its_next_slot_and_a_slot_fires_once") {
        eprintln!("a_new_schedule_starts_with_its_next_slot_and_a_slot_fires_once on {on}");
        let (_dir, store) = store(on).await;
        let g = graph(&[("PB-991", "every 1h")]);
        let six = Duration::hours(6);
        let (fired, next) = tick(&store, &g, six, at("2026-11-29T10:30:00Z")).await.unwrap();
        assert!(fired.is_empty(), "the 10:00 slot passed before Sparky knew the schedule");
        assert_eq!(next, Some(at("2026-11-29T11:00:00Z")));
        let (fired, _) = tick(&store, &g, six, at("2026-11-29T11:00:00.500Z")).await.unwrap();
        assert_eq!(
            fired,
            [Fired { playbook: "PB-991".into(), slot: at("2026-11-29T11:00:00Z"), missed: 0, ran: true }]
        );
        // The same moment again (a second tick, a restarted scheduler): nothing more.
        let (again, _) = tick(&store, &g, six, at("2026-11-29T11:00:00.700Z")).await.unwrap();
        assert!(again.is_empty());
        let pending = store.pending(10).await.unwrap();
        assert_eq!(pending.len(), 1);
        let e = &pending[0].event;
        assert_eq!((e.kind.as_str(), e.labels["playbook"].as_str()), ("schedule", "PB-991"));
        assert_eq!(e.occurred_at, at("2026-11-29T11:00:00Z"));
        let states = store.schedules().await.unwrap();
        assert_eq!(states[0].last_fired, Some(at("2026-11-29T11:00:00.500Z")));
    }
}

#[tokio::test]
async fn concurrent_schedulers_fire_a_slot_once() {
    for on in backends::names("concurrent_schedulers_fire_a_slot_once") {
        eprintln!("concurrent_schedulers_fire_a_slot_once on {on}");
        let (_dir, store) = store(on).await;
        let g = graph(&[("PB-992", "every 1m")]);
        tick(&store, &g, Duration::hours(6), at("2026-11-29T10:00:30Z")).await.unwrap();
        let now = at("2026-11-29T10:01:00Z");
        let (a, b) = tokio::join!(tick(&store, &g, Duration::hours(6), now), tick(&store, &g, Duration::hours(6), now));
        let ran = a.unwrap().0.len() + b.unwrap().0.len();
        assert_eq!(ran, 1);
        assert_eq!(store.pending(10).await.unwrap().len(), 1);
    }
}

#[tokio::test]
async fn a_restart_catches_up_recent_missed_runs_once_and_skips_stale_ones() {
    for on in backends::names("a_restart_catches_up_recent_missed_runs_once_and_skips_stale_ones") {
        eprintln!("a_restart_catches_up_recent_missed_runs_once_and_skips_stale_ones on {on}");
        let (_dir, store) = store(on).await;
        let g = graph(&[("PB-993", "every 1h"), ("PB-994", "cron \"0 9 * * *\" tz \"UTC\"")]);
        let six = Duration::hours(6);
        tick(&store, &g, six, at("2026-11-29T08:30:00Z")).await.unwrap();
        let (fired, _) = tick(&store, &g, six, at("2026-11-29T09:00:01Z")).await.unwrap();
        assert_eq!(fired.len(), 2, "{fired:?}");
        // Down from 09:10 to 12:40 (a "restart" is a tick with what the store remembers): the
        // hourly schedule runs once for 12:00 (10:00 and 11:00 coalesced); the daily one has
        // nothing due.
        let (fired, _) = tick(&store, &g, six, at("2026-11-29T12:40:00Z")).await.unwrap();
        assert_eq!(
            fired,
            [Fired { playbook: "PB-993".into(), slot: at("2026-11-29T12:00:00Z"), missed: 2, ran: true }]
        );
        // Down from 12:40 until the next day 18:00: the daily 09:00 run is 9 h old — missed,
        // not run at 18:00; the hourly 18:00 slot runs.
        let (fired, _) = tick(&store, &g, six, at("2026-11-30T18:00:00Z")).await.unwrap();
        assert!(fired.contains(&Fired {
            playbook: "PB-994".into(),
            slot: at("2026-11-30T09:00:00Z"),
            missed: 0,
            ran: false
        }));
        assert!(fired.iter().any(|f| f.playbook == "PB-993" && f.ran && f.slot == at("2026-11-30T18:00:00Z")));
        // The missed slot is not tried again; the next day's is.
        let (fired, _) = tick(&store, &g, six, at("2026-11-30T18:30:00Z")).await.unwrap();
        assert!(fired.is_empty(), "{fired:?}");
        let (fired, _) = tick(&store, &g, six, at("2026-12-01T09:00:00Z")).await.unwrap();
        assert!(fired.iter().any(|f| f.playbook == "PB-994" && f.ran));
        let runs = store.pending(100).await.unwrap().len();
        assert_eq!(runs, 2 + 1 + 1 + 2, "09:00 both, 12:00, 18:00 hourly, the next day's 09:00 both");
    }
}

#[tokio::test]
async fn the_daemon_fires_a_schedule_through_the_decision_pipeline() {
    use sparky::daemon::{self, Options, config::Config};
    let dir = tempfile::tempdir().unwrap();
    let pbs = dir.path().join("playbooks");
    std::fs::create_dir_all(&pbs).unwrap();
    std::fs::write(
        pbs.join("PB-995.sparky"),
        "/// Every minute.\nplaybook PB-995 \"Tick\" {\n  status active\n  owner \"team:platform\"\n  on schedule every 1m\n  l3 priority P4\n}\n",
    )
    .unwrap();
    // Sparky last ran the schedule five minutes ago, then stopped: started again, it catches
    // up at once with one run (the latest missed slot).
    let url = format!("sqlite://{}", dir.path().join("sparky.db").display());
    let store = Store::open(&url).await.unwrap();
    let g = graph(&[("PB-995", "every 1m")]);
    let spec = Schedule::of(&g.playbooks()[0]).unwrap().spec();
    let five_ago = Schedule::of(&g.playbooks()[0]).unwrap().latest(Utc::now() - Duration::minutes(5)).unwrap();
    store.schedule_seen("PB-995", &spec, five_ago, Utc::now()).await.unwrap();
    store.close().await;
    let mut config = Config::parse("", "sparky.yaml", &|_| None).unwrap();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.playbooks = vec![pbs];
    config.catalog = Some(Vec::new());
    config.store = url;
    let running = daemon::start(Options { config, insecure: false, ..Options::default() }).await.unwrap();
    let base = format!("http://{}", running.addr);
    let mut decisions = Vec::new();
    // The catch-up run is decided like any event.
    for _ in 0..100 {
        let v: serde_json::Value =
            reqwest::get(format!("{base}/api/v1/decisions?playbook=PB-995")).await.unwrap().json().await.unwrap();
        decisions = v["decisions"].as_array().cloned().unwrap_or_default();
        if !decisions.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(!decisions.is_empty(), "no scheduled run was decided");
    // The missed slots coalesced into one run (a second one only if a minute starts meanwhile).
    assert!(decisions.len() <= 2, "{decisions:#?}");
    assert_eq!(decisions[0]["explained"]["kind"], "schedule", "{:#}", decisions[0]);
    running.stop().await.unwrap();
}
