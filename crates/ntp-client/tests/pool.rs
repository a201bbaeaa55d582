//! Pools on virtual time: resolution through `Output::Resolve` and
//! `System::handle_resolved`, members up to the maximum, replacement of
//! dead, lying and kissing members, and the resolution back-off.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::float_cmp,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "test code"
)]

mod common;

use core::net::SocketAddr;

use common::*;
use ntp_client::{
    ConfigError, Event, POOL_FALSETICKER_HOLD, POOL_RESOLVE_MAX_INTERVAL, PoolError, PoolId,
    PoolRemoval, SystemConfig,
};
use ntp_proto::KissCode;

/// The addresses of servers `1..=n` (1-based, as `server_addr`).
fn addresses(numbers: &[u8]) -> Vec<SocketAddr> {
    numbers.iter().map(|&n| server_addr(n)).collect()
}

fn added(h: &Harness) -> Vec<SocketAddr> {
    h.events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::PoolMemberAdded { address, .. } => Some(*address),
            _ => None,
        })
        .collect()
}

fn removed(h: &Harness) -> Vec<(SocketAddr, PoolRemoval)> {
    h.events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::PoolMemberRemoved {
                address, reason, ..
            } => Some((*address, *reason)),
            _ => None,
        })
        .collect()
}

/// The addresses of a pool's current members, in order.
fn members(h: &Harness, pool: PoolId) -> Vec<SocketAddr> {
    h.client.pool_members(pool).map(|s| s.address()).collect()
}

/// When the first member was removed, seconds.
fn first_removal_time(h: &Harness) -> f64 {
    h.events
        .iter()
        .find(|(_, e)| matches!(e, Event::PoolMemberRemoved { .. }))
        .map(|(t, _)| t.as_secs_f64())
        .unwrap()
}

#[test]
fn a_pool_fills_to_its_maximum_and_synchronizes() {
    let mut h = Harness::new(fset(), 0.0, 11);
    for _ in 0..6 {
        h.add_server_only(Behaviour::Ntp(open_server(primary())), 0.0);
    }
    let pool = h.client.add_pool("pool.example", 4).unwrap();
    assert_eq!(h.client.pool_name(pool), Some("pool.example"));
    h.resolver = Some(Box::new(|_| addresses(&[1, 2, 2, 3, 4, 5, 6])));
    h.run_until(3_600.0);
    // One resolution filled it: the duplicate skipped, the fifth and
    // sixth addresses not needed.
    assert_eq!(h.resolves.len(), 1, "{:?}", h.resolves);
    assert_eq!(added(&h), addresses(&[1, 2, 3, 4]));
    assert_eq!(h.client.pool_members(pool).count(), 4);
    assert!(
        h.client
            .sources()
            .all(|s| h.client.pool_of(s.id()) == Some(pool))
    );
    assert!(h.client.is_synchronized());
    assert!(removed(&h).is_empty());
    assert_eq!(h.requests_between(4, 0.0, 3_600.0), 0);
}

#[test]
fn a_dead_member_is_replaced_by_a_new_address() {
    let mut h = Harness::new(fset(), 0.0, 12);
    for _ in 0..3 {
        h.add_server_only(Behaviour::Ntp(open_server(primary())), 0.0);
    }
    h.add_server_only(Behaviour::Dead, 0.0); // 4
    h.add_server_only(Behaviour::Ntp(open_server(primary())), 0.0); // 5
    let pool = h.client.add_pool("pool.example", 4).unwrap();
    // The name keeps returning the dead server first.
    h.resolver = Some(Box::new(|_| addresses(&[4, 1, 2, 3, 5])));
    h.run_until(7_200.0);
    assert_eq!(
        removed(&h),
        vec![(server_addr(4), PoolRemoval::Unreachable)]
    );
    // The dead address is blocked; the fifth server replaced it.
    assert_eq!(added(&h), addresses(&[4, 1, 2, 3, 5]));
    assert_eq!(members(&h, pool), addresses(&[1, 2, 3, 5]));
    // Removed after 8 unanswered polls: the iburst and 7 polls of 64 s,
    // well within the hour.
    let removed_at = first_removal_time(&h);
    assert!((400.0..1_000.0).contains(&removed_at), "{removed_at}");
    assert!(h.client.is_synchronized());
}

#[test]
fn a_falseticker_member_is_replaced_after_the_hold() {
    let mut h = Harness::new(fset(), 0.0, 13);
    for _ in 0..3 {
        h.add_server_only(Behaviour::Ntp(open_server(primary())), 0.0);
    }
    h.add_server_only(Behaviour::Ntp(open_server(primary())), 0.5); // 4, a liar
    h.add_server_only(Behaviour::Ntp(open_server(primary())), 0.0); // 5
    let pool = h.client.add_pool("pool.example", 4).unwrap();
    h.resolver = Some(Box::new(|_| addresses(&[1, 2, 3, 4, 5])));
    h.run_until(3_600.0);
    assert_eq!(
        removed(&h),
        vec![(server_addr(4), PoolRemoval::Falseticker)]
    );
    let removed_at = first_removal_time(&h);
    let hold = POOL_FALSETICKER_HOLD.as_secs_f64();
    assert!((hold..hold + 300.0).contains(&removed_at), "{removed_at}");
    assert_eq!(members(&h, pool), addresses(&[1, 2, 3, 5]));
    assert!(h.client.is_synchronized());
    assert!(h.client.offset().abs() < 0.01);
}

#[test]
fn a_member_stopped_by_a_kiss_of_death_is_replaced() {
    let mut h = Harness::new(fset(), 0.0, 14);
    h.add_server_only(Behaviour::Ntp(open_server(primary())), 0.0);
    h.add_server_only(
        Behaviour::Ntp(server_with(ntp_server::AccessAction::Deny, primary())),
        0.0,
    );
    h.add_server_only(Behaviour::Ntp(open_server(primary())), 0.0);
    let pool = h.client.add_pool("pool.example", 2).unwrap();
    h.resolver = Some(Box::new(|_| addresses(&[1, 2, 3])));
    h.run_until(600.0);
    assert_eq!(
        removed(&h),
        vec![(server_addr(2), PoolRemoval::Kissed(KissCode::Deny))]
    );
    assert_eq!(members(&h, pool), addresses(&[1, 3]));
}

#[test]
fn resolutions_back_off_while_they_bring_nothing_new() {
    let mut h = Harness::new(fset(), 0.0, 15);
    for _ in 0..2 {
        h.add_server_only(Behaviour::Ntp(open_server(primary())), 0.0);
    }
    let pool = h.client.add_pool("small.example", 4).unwrap();
    h.resolver = Some(Box::new(|_| addresses(&[1, 2])));
    h.run_until(40_000.0);
    assert_eq!(h.client.pool_members(pool).count(), 2);
    let times: Vec<f64> = h.resolves.iter().map(|(t, _)| t.as_secs_f64()).collect();
    // 0, then 64 s later (the first one added members), then the interval
    // doubles from 64 s while nothing new comes: up to 4096 s.
    let gaps: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(
        gaps[..8],
        [64.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0]
    );
    let max = POOL_RESOLVE_MAX_INTERVAL.as_secs_f64();
    assert!(gaps[8..].iter().all(|&g| g == max), "{gaps:?}");
    assert!(times.len() < 20, "{times:?}");
}

#[test]
fn bad_pool_input_is_refused_without_change() {
    let mut h = Harness::new(SystemConfig::default(), 0.0, 16);
    assert_eq!(
        h.client.add_pool("pool.example", 0),
        Err(ConfigError::PoolSize)
    );
    let pool = h.client.add_pool("pool.example", 1).unwrap();
    let instant = h.instant();
    let other = PoolId::clone(&pool);
    assert!(h.client.remove_pool(other));
    assert_eq!(
        h.client.handle_resolved(instant, pool, &addresses(&[1])),
        Err(PoolError::UnknownPool)
    );
    assert_eq!(h.client.sources().count(), 0);
    assert!(!h.client.remove_pool(pool));
    // Unasked answers are used, but only up to the maximum.
    let pool = h.client.add_pool("pool.example", 2).unwrap();
    assert_eq!(
        h.client
            .handle_resolved(instant, pool, &addresses(&[1, 2, 3])),
        Ok(2)
    );
    assert_eq!(
        h.client.handle_resolved(instant, pool, &addresses(&[3])),
        Ok(0)
    );
}
