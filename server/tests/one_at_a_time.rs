//! What must exist once across every instance sharing the database, raced through the real
//! store (SQLite, and PostgreSQL when TEST_DATABASE_URL is set): a background job's lease has
//! exactly one holder among many concurrent takers, and of many concurrent setup-code issues
//! exactly one code is live; the setup page tells an expired or replaced code from a wrong one;
//! two job runners on one database run a job once per period and hand its lease over.

mod common;

use axum::http::StatusCode;
use common::*;
use server::Settings;
use server::auth::sha256_hex;
use server::store::{Db, leases, tenants};
use std::sync::Arc;
use tokio::sync::Barrier;

const LEASE_MS: i64 = 60_000;
const DAY_MS: i64 = 24 * 3600 * 1000;

/// `n` takers of one lease at `now`, released together; the holders that got it.
async fn race_for_lease(db: &Db, job: &str, holders: Vec<String>, now: i64) -> Vec<String> {
    let start = Arc::new(Barrier::new(holders.len()));
    let mut tasks = Vec::new();
    for holder in holders {
        let (db, job, start) = (db.clone(), job.to_string(), start.clone());
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            let got = leases::acquire(&db, &job, &holder, now, now + LEASE_MS)
                .await
                .unwrap();
            got.map(|_| holder)
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        if let Some(w) = t.await.unwrap() {
            winners.push(w);
        }
    }
    winners
}

fn holders(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

#[tokio::test]
async fn of_many_concurrent_lease_takers_exactly_one_holds_the_lease() {
    let (db, _dir) = fresh_db().await;
    for round in 0..3 {
        let job = format!("race-{round}");
        let winners = race_for_lease(&db, &job, holders("a", 24), START_MS).await;
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        let stored = leases::all(&db).await.unwrap();
        let row = stored.iter().find(|(j, _, _)| *j == job).unwrap();
        assert_eq!(row.1, winners[0], "the database names the one winner");
    }
    let holder = leases::all(&db).await.unwrap()[0].1.clone();
    let job = "race-0";

    // While the lease runs, only its holder renews it; the others keep failing.
    let half = START_MS + LEASE_MS / 2;
    let mut renewers = holders("a", 24);
    renewers.retain(|h| *h != holder);
    renewers.push(holder.clone());
    let winners = race_for_lease(&db, job, renewers, half).await;
    assert_eq!(winners, vec![holder.clone()], "only the holder renews");

    // The holder stops renewing: once the lease runs out, exactly one other taker gets it.
    let later = half + LEASE_MS;
    let winners = race_for_lease(&db, job, holders("b", 24), later).await;
    assert_eq!(winners.len(), 1, "after expiry: winners {winners:?}");
    let successor = winners[0].clone();
    assert_eq!(
        leases::acquire(&db, job, &holder, later, later + LEASE_MS)
            .await
            .unwrap(),
        None,
        "the old holder lost it"
    );

    // The schedule travels with the lease, and a released lease is free at once.
    assert!(leases::mark_run(&db, job, &successor, later).await.unwrap());
    assert!(!leases::mark_run(&db, job, &holder, later).await.unwrap());
    assert_eq!(leases::release_all(&db, &successor).await.unwrap(), 1);
    let next = leases::acquire(&db, job, "c", later + 1, later + 1 + LEASE_MS)
        .await
        .unwrap();
    assert_eq!(next, Some(later), "taken at once, with the last run kept");
}

/// `codes` issued concurrently at `now`; which codes were issued.
async fn race_to_issue(db: &Db, codes: &[String], now: i64) -> Vec<String> {
    let start = Arc::new(Barrier::new(codes.len()));
    let mut tasks = Vec::new();
    for code in codes.iter().cloned() {
        let (db, start) = (db.clone(), start.clone());
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            let r = tenants::issue_setup_code(&db, &sha256_hex(&code), now, now + DAY_MS)
                .await
                .unwrap();
            (code, r)
        }));
    }
    let mut issued = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            (code, tenants::SetupCodeIssue::Issued) => issued.push(code),
            (_, tenants::SetupCodeIssue::AlreadyLive { expires_at }) => {
                assert!(expires_at > now, "the live code it names is live")
            }
        }
    }
    issued
}

async fn setup_with(app: &TestApp, code: &str) -> common::Reply {
    let mut form = setup_form();
    form.push(("setup_code", code));
    app.server_fn("create_organisation", &form, None).await
}

#[tokio::test]
async fn of_many_concurrent_setup_code_issues_exactly_one_code_is_live() {
    let app = TestApp::with_settings(Settings {
        public_url: PUBLIC_URL.into(),
        setup_code_required: true,
        ..Settings::default()
    })
    .await;
    let codes: Vec<String> = (0..16).map(|i| format!("code-{i:02}")).collect();
    let issued = race_to_issue(&app.db, &codes, START_MS).await;
    assert_eq!(issued.len(), 1, "issued: {issued:?}");
    let live = issued[0].clone();
    for code in &codes {
        let state = tenants::setup_code_state(&app.db, &sha256_hex(code), START_MS)
            .await
            .unwrap();
        let expected = if *code == live {
            tenants::SetupCodeState::Live
        } else {
            tenants::SetupCodeState::Unknown
        };
        assert_eq!(state, expected, "{code}");
    }
    // A code that lost the race does not open the setup page.
    let loser = codes.iter().find(|c| **c != live).unwrap();
    let r = setup_with(&app, loser).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert!(r.body.contains("setup code is not correct"), "{}", r.body);

    // Past its expiry the live code is refused with a readable reason, and the next issue
    // (the next start) wins again, once.
    app.clock.advance_ms(DAY_MS + 1);
    let r = setup_with(&app, &live).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert!(r.body.contains("This setup code expired on"), "{}", r.body);
    assert!(r.body.contains("bitabiz setup-code"), "{}", r.body);
    let later = START_MS + DAY_MS + 1;
    let next: Vec<String> = (0..16).map(|i| format!("next-{i:02}")).collect();
    let issued = race_to_issue(&app.db, &next, later).await;
    assert_eq!(issued.len(), 1, "issued after expiry: {issued:?}");
    let r = setup_with(&app, &live).await;
    assert!(r.body.contains("expired"), "still says expired: {}", r.body);

    // The operator replaces it (`bitabiz setup-code`): the replaced code says so.
    tenants::replace_setup_code(&app.db, &sha256_hex("fresh"), later, later + DAY_MS)
        .await
        .unwrap();
    let r = setup_with(&app, &issued[0]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert!(r.body.contains("replaced by a newer one"), "{}", r.body);
    let r = setup_with(&app, "fresh").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

fn counting_job(runs: Arc<std::sync::atomic::AtomicUsize>) -> server::jobs::Job {
    server::jobs::Job {
        name: "count",
        period: std::time::Duration::from_secs(3600),
        first_after: std::time::Duration::ZERO,
        run: Box::new(move || {
            let runs = runs.clone();
            Box::pin(async move {
                runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok(0)
            })
        }),
    }
}

fn holds(m: &server::metrics::Metrics) -> bool {
    m.leases_held()
        .iter()
        .any(|(job, held)| *job == "count" && *held)
}

/// Two job runners (as two instances would) on one database: the job runs once for its
/// period, on the one that holds the lease; stopping that one hands the lease over without
/// running the job again before its period is up.
#[tokio::test]
async fn two_job_runners_share_one_schedule_and_hand_the_lease_over() {
    use server::clock::{Clock, SystemClock};
    use server::jobs::Jobs;
    use server::metrics::Metrics;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    let (db, _dir) = fresh_db().await;
    let runs = Arc::new(AtomicUsize::new(0));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let lease = Duration::from_secs(1);
    let metrics = [Arc::new(Metrics::default()), Arc::new(Metrics::default())];
    let mut runners: Vec<Option<Jobs>> = metrics
        .iter()
        .map(|m| {
            Some(Jobs::start(
                db.clone(),
                clock.clone(),
                m.clone(),
                lease,
                vec![counting_job(runs.clone())],
            ))
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    let holder = loop {
        let held: Vec<usize> = (0..2).filter(|i| holds(&metrics[*i])).collect();
        assert!(held.len() <= 1, "both hold the lease");
        if held.len() == 1 && runs.load(Ordering::SeqCst) == 1 {
            break held[0];
        }
        assert!(Instant::now() < deadline, "no runner took the job");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // Several renewal rounds of both: still one holder, still one run.
    tokio::time::sleep(lease * 2).await;
    assert!(holds(&metrics[holder]) && !holds(&metrics[1 - holder]));
    assert_eq!(runs.load(Ordering::SeqCst), 1, "one run per period");

    // The holder stops cleanly (gives the lease up): the other takes it at its next round.
    runners[holder].take().unwrap().stop().await;
    let other = 1 - holder;
    let deadline = Instant::now() + lease * 3;
    while !holds(&metrics[other]) {
        assert!(
            Instant::now() < deadline,
            "the other runner did not take over"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(lease).await;
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "the schedule moved with the lease: no second run within the period"
    );
    runners[other].take().unwrap().stop().await;
}
