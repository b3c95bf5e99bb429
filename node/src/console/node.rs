//! 节点状态: what this node is doing (height, sync, peers, mempool, consensus), the metrics
//! an IT officer watches, and the evidence of misbehaviour it holds (the last two for
//! `member` callers, as in the API).

use axum::extract::{Extension, State};
use axum::response::Response;
use maud::html;

use super::{
    Console, Nav, PageResult, ROOT, Viewer, all_members, beijing, may_member, member_of_node_key,
    needs_member, on_off, render, short, state, yes_no,
};

pub(super) async fn page(State(c): State<Console>, found: Option<Extension<Viewer>>) -> Response {
    render(c, found, node_page).await
}

fn node_page(c: &Console, viewer: &Viewer) -> PageResult {
    let st = c.shared.status.read().expect("status").clone();
    let view = state(c)?;
    let members = all_members(&view);
    let lag = st.highest_peer_height.saturating_sub(st.height);
    let evidence = if may_member(viewer) {
        Some(c.shared.store.evidence()?)
    } else {
        None
    };
    let chain_id = caihong_consensus::ChainId::new(c.shared.chain_id.clone());
    let first_block = c.shared.store.first_block()?;
    let body = html! {
        h1 { "节点状态 · " (st.member) }
        dl.facts #status {
            dt { "链" } dd { code { (st.chain_id) } }
            dt { "创世文件哈希" } dd { code { (st.genesis_hash) } }
            dt { "本节点公钥" } dd { code { (st.node_key) } }
            dt { "已提交高度" } dd { (st.height) " (" (beijing(st.latest_block_time_ms)) ")" }
            dt { "同步" } dd { @if st.syncing { span.warn { "正在追赶 (落后 " (lag) " 个区块)" } } @else { (yes_no(lag <= 1, "已同步", "落后")) " (对等节点最高高度 " (st.highest_peer_height) ")" } }
            dt { "验证者" } dd { (on_off(st.validator, "是", "否 (不参与出块)")) }
            dt { "共识轮次" } dd { (st.consensus_round) " (上一高度用了 " (st.rounds_last_height) " 轮)" }
            dt { "交易池" } dd { (st.mempool_size) " 笔待打包" }
            dt { "本节点持有的区块" } dd { "自高度 " (first_block.max(1)) " 起" }
            @if let Some((h, r, step)) = &st.last_signed { dt { "最近签名" } dd { "高度 " (h) " 轮 " (r) " " (step) } }
        }
        h2 { "对等节点 (" (st.peers.len()) ")" }
        table #peers {
            thead { tr { th scope="col" { "成员" } th scope="col" { "节点公钥" } th scope="col" { "P2P 地址" } } }
            tbody {
                @for p in &st.peers {
                    @let key: Option<[u8; 32]> = hex::decode(p).ok().and_then(|b| b.try_into().ok());
                    @let m = key.and_then(|k| member_of_node_key(&members, &k));
                    tr {
                        td { (m.map_or("(非成员)", |m| m.id.as_str())) }
                        td { (short(p)) }
                        td { code { (m.map_or("", |m| m.p2p_address.as_str())) } }
                    }
                }
            }
        }
        h2 { "指标 (metrics)" }
        @if may_member(viewer) {
            table #metrics {
                thead { tr { th scope="col" { "指标" } th scope="col" { "值" } th scope="col" { "含义" } } }
                tbody {
                    tr { td { code { "caihong_height" } } td { (st.height) } td { "已提交高度" } }
                    tr { td { code { "caihong_block_interval_ms" } } td { (st.last_block_interval_ms) } td { "最近两个区块的间隔 (毫秒)" } }
                    tr { td { code { "caihong_committed_txs_total" } } td { (st.committed_txs) } td { "本次启动以来提交的交易" } }
                    tr { td { code { "caihong_mempool_size" } } td { (st.mempool_size) } td { "交易池中的交易" } }
                    tr { td { code { "caihong_peers" } } td { (st.peers.len()) } td { "已连接的成员节点" } }
                    tr { td { code { "caihong_sync_lag" } } td { (lag) } td { "落后于最高对等节点的区块数" } }
                    tr { td { code { "caihong_rounds_last_height" } } td { (st.rounds_last_height) } td { "上一高度的共识轮数 (大于 1 说明有成员未及时出块)" } }
                    tr { td { code { "caihong_consensus_gossip_rejected_total" } } td { (st.rejected_consensus_gossip) } td { "被拒绝的伪造或无法解码的共识消息" } }
                }
            }
            p { "Prometheus 格式: " a href="/metrics" { code { "/metrics" } } }
        } @else {
            (needs_member("指标"))
        }
        h2 { "作恶证据 (evidence)" }
        @match &evidence {
            None => (needs_member("作恶证据")),
            Some(list) if list.is_empty() => p #no-evidence { "本节点没有记录到任何成员的双签 (equivocation)。" },
            Some(list) => table #evidence {
                thead { tr { th scope="col" { "类型" } th scope="col" { "高度 / 轮次" } th scope="col" { "成员" } th scope="col" { "复核" } } }
                tbody {
                    @for ev in list {
                        @let (h, r) = ev.height_round();
                        @let offender = ev.offender();
                        tr {
                            td { @match ev {
                                caihong_consensus::Evidence::ConflictingVotes { .. } => "对同一高度轮次投了两个不同的票",
                                caihong_consensus::Evidence::ConflictingProposals { .. } => "同一高度轮次提出了两个不同的区块",
                            } }
                            td { (h) " / " (r) }
                            td { (member_of_node_key(&members, &offender.0).map_or(hex::encode(offender.0), |m| m.id.as_str().to_string())) }
                            td { (yes_no(ev.verify(&chain_id).is_ok(), "签名有效", "无效")) }
                        }
                    }
                }
            },
        }
        p { a href={(ROOT) "/blocks"} { "查看区块 →" } }
    };
    Ok(super::page(c, viewer, "节点状态", Nav::Node, body))
}
