//! Members killed while locked (issue 28), in the fault lab: each member's node runs in its own
//! network namespace. One member is cut off, so the other three need each other for every
//! block; one of those three then crashes the instant its precommit and lock are on disk,
//! before the precommit leaves (the `crash-after-lock` test fault of the `byzantine` build,
//! node::byzantine: no signal from outside can hit that moment). Nothing can commit until it
//! is back, and it must come back into the round it left, with its lock, its valid value and
//! its votes, for the three to carry on. Each member is the one that crashes once.
//!
//! Checked: the victim really crashed after locking; the three commit again within
//! [`RESUME_BOUND`] of its restart; after healing, all four hold the same chain and no member
//! recorded evidence of a conflicting signature.
//!
//! Built only with `--features byzantine` (tests/run-all.sh runs it).

mod harness;
mod netlab;

use std::time::{Duration, Instant};

use netlab::lab_or_skip;

/// After the crashed member restarts, the three connected members must commit within this.
const RESUME_BOUND: Duration = Duration::from_secs(30);
const MEMBERS: usize = 4;

#[test]
fn members_killed_right_after_locking_restart_and_the_alliance_keeps_committing() {
    let Some(mut lab) = lab_or_skip(MEMBERS, "locked", &|m| {
        m.env = vec![("CAIHONG_BYZANTINE".into(), "crash-after-lock".into())];
    }) else {
        return;
    };
    for victim in 0..MEMBERS {
        let cut = (victim + 1) % MEMBERS;
        let three: Vec<usize> = (0..MEMBERS).filter(|&i| i != cut).collect();
        lab.net.partition(&[vec![cut], three.clone()]);
        let a = &mut lab.alliance;
        let arm = a.members[victim].home.join("crash-after-lock");
        std::fs::write(&arm, b"").unwrap();
        let armed = Instant::now();
        while a.is_running(victim) {
            assert!(
                armed.elapsed() < Duration::from_secs(60),
                "member {victim} did not lock within 60 s of being armed:\n{}",
                a.every_log_tail()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            !arm.exists(),
            "member {victim} exited without the armed crash:\n{}",
            a.log_tail(victim)
        );
        let stuck: Vec<Option<u64>> = three.iter().map(|&i| a.height(i)).collect();
        eprintln!(
            "member {victim} crashed after locking (member {cut} cut off); heights {stuck:?}"
        );
        // Let the two left time out a few rounds: the victim must rejoin rounds ahead of it.
        std::thread::sleep(Duration::from_secs(3));
        a.kill(victim); // reap the aborted process
        a.start(victim);
        let restarted = Instant::now();
        let target = stuck.iter().flatten().max().copied().unwrap_or(0) + 2;
        for &i in &three {
            a.wait_height(i, target, RESUME_BOUND);
        }
        eprintln!(
            "member {victim}: the three reached height {target} {:?} after its restart",
            restarted.elapsed()
        );
        lab.net.heal();
        // The member that was cut off catches up before the next round of the test.
        let a = &lab.alliance;
        let tip = three.iter().filter_map(|&i| a.height(i)).max().unwrap();
        a.wait_height(cut, tip, Duration::from_secs(60));
    }

    let a = &lab.alliance;
    let tip = (0..MEMBERS).filter_map(|i| a.height(i)).max().unwrap() + 2;
    for i in 0..MEMBERS {
        a.wait_height(i, tip, Duration::from_secs(60));
    }
    let all: Vec<usize> = (0..MEMBERS).collect();
    a.assert_same_chain(&all, tip);
    for i in all {
        assert_eq!(
            a.get(i, "/v1/evidence"),
            serde_json::json!([]),
            "member {i}"
        );
    }
}
