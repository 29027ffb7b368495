//! The development set-up's demo: `strongroom flow` runs a complete FAPI 2.0 flow with
//! the seeded demo client and user, and uses the bound token at the demo resource.

use strongroom_server::demo_flow::{FlowOptions, run};
use strongroom_tests::*;

/// Issue "FAPI 2.0 flow", done means: the newcomer's flow works on the development set-up.
#[tokio::test]
async fn demo_flow_runs_end_to_end_on_the_development_set_up() {
    let ts = TestServer::start().await;
    let cfg = ts.server.state.config.clone();
    let summary = strongroom_server::dev::seed(&cfg, &ts.server.state.store, now()).await.unwrap();
    assert!(summary.contains("DEVELOPMENT SET-UP"));
    // Seeding twice reuses what exists.
    strongroom_server::dev::seed(&cfg, &ts.server.state.store, now()).await.unwrap();
    let mut opts = FlowOptions::demo_user(ts.issuer.clone(), cfg.data_dir.clone());
    opts.resolve_localhost = Some(ts.server.public_addr);
    let report = run(opts).await.expect("the demo flow completes");
    assert_eq!(report.tokens["token_type"], "DPoP");
    assert_eq!(report.accounts["bound_by"], "dpop");
    assert_eq!(report.accounts["client_id"], "demo-fapi2-jwt");
    assert_eq!(report.userinfo["name"], "Alice Liddell");
}
