//! 专家抽取: the expert pool's size per specialty and member (counts only, for every scope),
//! and for `member` callers the extractions with their status and one extraction as this
//! member may see it: sealed until the award, then the published committee with the draw
//! re-derived from the chain, seat by seat.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum::extract::{Extension, Path, Query, State};
use axum::response::Response;
use caihong_chaincode::experts::{
    self, Expert, ExpertStatus, Extraction, ExtractionStatus, Verdict, view::ViewKind,
};
use caihong_chaincode::members::MemberId;
use caihong_chaincode::{Hash, codec, keys};
use maud::html;
use serde::Deserialize;

use super::{
    Console, Nav, PageError, PageResult, ROOT, Viewer, beijing, may_member, needs_member, render,
    short, state, yes_no,
};
use crate::storage::StateView;

/// How long a pool count is shown before it is counted again (a busy chain registers experts
/// every block; counting a large pool on every view would cost more than it tells).
const POOL_REUSE: Duration = Duration::from_secs(30);
/// Extractions listed per page.
const PAGE: usize = 30;

/// Pool counts: specialty → member → (active, all).
pub(crate) struct PoolCache {
    at: Instant,
    height: u64,
    counts: BTreeMap<String, BTreeMap<MemberId, (u64, u64)>>,
    experts: u64,
}

fn count_pool(view: &StateView<'_>) -> Result<PoolCache, PageError> {
    let mut counts: BTreeMap<String, BTreeMap<MemberId, (u64, u64)>> = BTreeMap::new();
    let mut experts = 0;
    let mut start: Option<Vec<u8>> = None;
    loop {
        let chunk = view.scan_page(keys::EXPERT_PREFIX, start.as_deref(), false, 10_000)?;
        let Some((last, _)) = chunk.last() else { break };
        let mut next = last.clone();
        next.push(0);
        for (_, value) in &chunk {
            let Ok(e) = codec::decode::<Expert>(value) else {
                continue;
            };
            experts += 1;
            for s in &e.specialties {
                let cell = counts
                    .entry(s.clone())
                    .or_default()
                    .entry(e.home.clone())
                    .or_default();
                cell.1 += 1;
                if e.status == ExpertStatus::Active {
                    cell.0 += 1;
                }
            }
        }
        start = Some(next);
    }
    Ok(PoolCache {
        at: Instant::now(),
        height: view.height().unwrap_or(0),
        counts,
        experts,
    })
}

#[derive(Debug, Deserialize, Default)]
pub(super) struct ExpertsQuery {
    before: Option<u64>,
}

pub(super) async fn page(
    State(c): State<Console>,
    found: Option<Extension<Viewer>>,
    Query(q): Query<ExpertsQuery>,
) -> Response {
    render(c, found, move |c, viewer| experts_page(c, viewer, &q)).await
}

pub(super) fn status_text(s: &ExtractionStatus) -> String {
    match s {
        ExtractionStatus::AwaitingAnchor => "等待锚定区块".into(),
        ExtractionStatus::AwaitingSeal { deadline } => format!("等待密封 (截止高度 {deadline})"),
        ExtractionStatus::Sealed => "已密封, 等待专家确认".into(),
        ExtractionStatus::Confirmed => "全部席位已确认".into(),
        ExtractionStatus::Short { reason } => format!("席位不足: {reason}"),
        ExtractionStatus::Failed { reason } => format!("失败: {reason}"),
    }
}

fn experts_page(c: &Console, viewer: &Viewer, q: &ExpertsQuery) -> PageResult {
    let view = state(c)?;
    let members: Vec<MemberId> = super::all_members(&view)
        .into_iter()
        .map(|m| m.id)
        .collect();
    let mut cache = c.pools.lock().unwrap_or_else(|p| p.into_inner());
    if cache.as_ref().is_none_or(|p| p.at.elapsed() > POOL_REUSE) {
        *cache = Some(count_pool(&view)?);
    }
    let pool = cache.as_ref().expect("counted");
    let extractions: Vec<Extraction> = if may_member(viewer) && q.before != Some(0) {
        let start = q.before.map(|id| keys::extraction(id.saturating_sub(1)));
        view.scan_page(keys::EXTRACTION_PREFIX, start.as_deref(), true, PAGE)?
            .into_iter()
            .filter_map(|(_, v)| codec::decode::<Extraction>(&v).ok())
            .collect()
    } else {
        Vec::new()
    };
    let older = extractions
        .last()
        .filter(|e| extractions.len() == PAGE && e.id > 1)
        .map(|e| e.id);
    let body = html! {
        h1 { "专家库与专家抽取" }
        h2 { "专家库规模 (按专业与成员)" }
        p { "共 " strong { (pool.experts) } " 名专家; 统计于高度 " (pool.height)
            ", 每格为 “可抽取 (正常) / 全部”。只显示人数, 不含个人信息。" }
        table #pool {
            thead { tr { th scope="col" { "专业代码" } @for m in &members { th scope="col" { (m.as_str()) } } th scope="col" { "合计" } } }
            tbody {
                @for (code, by_member) in &pool.counts {
                    tr {
                        td { code { (code) } }
                        @for m in &members {
                            @let (a, t) = by_member.get(m).copied().unwrap_or((0, 0));
                            td { (a) " / " (t) }
                        }
                        td { (by_member.values().map(|c| c.0).sum::<u64>()) " / " (by_member.values().map(|c| c.1).sum::<u64>()) }
                    }
                }
            }
        }
        h2 { "专家抽取" }
        @if !may_member(viewer) {
            (needs_member("抽取记录"))
        } @else if extractions.is_empty() {
            p { "没有抽取记录。" }
        } @else {
            table #extractions {
                thead { tr { th scope="col" { "编号" } th scope="col" { "项目编号" } th scope="col" { "申请成员" } th scope="col" { "评标时间" } th scope="col" { "需求" } th scope="col" { "状态" } th scope="col" { "揭示与核验" } } }
                tbody {
                    @for e in &extractions {
                        tr {
                            td { a href={(ROOT) "/extractions/" (e.id)} { (e.id) } }
                            td { (e.project_code) }
                            td { (e.requester.as_str()) }
                            td { (beijing(e.window.start)) " 至 " (beijing(e.window.end)) }
                            td { (e.requirements.iter().map(|r| format!("{} ×{}+{}", r.specialty, r.count, r.backups)).collect::<Vec<_>>().join(", ")) }
                            td { (status_text(&e.status)) }
                            td { @match &e.published {
                                None => "密封中",
                                Some(p) => (yes_no(p.verdict == Verdict::Verified, "已揭示, 链上核验通过", "已揭示, 核验未通过")),
                            } }
                        }
                    }
                }
            }
            @if let Some(id) = older {
                p.pager { a rel="next" href={(ROOT) "/experts?before=" (id)} { "更早的抽取 →" } }
            }
        }
    };
    Ok(super::page(c, viewer, "专家抽取", Nav::Experts, body))
}

pub(super) async fn extraction(
    State(c): State<Console>,
    found: Option<Extension<Viewer>>,
    Path(id): Path<String>,
) -> Response {
    render(c, found, move |c, viewer| extraction_page(c, viewer, &id)).await
}

/// A seat's answer in words.
fn answer_text(answer: &str) -> &'static str {
    match answer {
        "confirmed" => "已确认",
        "declined" => "已谢绝",
        "pending" => "待确认",
        "reserve" => "备用 (未启用)",
        _ => "?",
    }
}

fn view_text(kind: ViewKind) -> &'static str {
    match kind {
        ViewKind::Sealed => "密封视图: 评标结果确定前, 谁入席是保密的",
        ViewKind::Home => "本成员视图: 只显示本成员专家所在的席位",
        ViewKind::Requester => "申请方视图: 本成员申请了这次抽取, 可见整个评标委员会",
        ViewKind::Published => "公开视图: 评标结果确定后已揭示, 并由链上重新推导核验",
        #[allow(unreachable_patterns)]
        _ => "视图",
    }
}

fn extraction_page(c: &Console, viewer: &Viewer, id: &str) -> PageResult {
    if !may_member(viewer) {
        let body = html! { h1 { "抽取 " (id) } (needs_member("抽取记录")) };
        return Ok(super::page(c, viewer, "专家抽取", Nav::Experts, body));
    }
    let id: u64 = id
        .parse()
        .map_err(|_| PageError::bad(format!("抽取编号 {id:?} 不是数字")))?;
    let view = state(c)?;
    let ext = experts::extraction(&view, id)
        .ok_or_else(|| PageError::not_found(format!("链上没有编号为 {id} 的抽取")))?;
    let member = MemberId::parse(&c.shared.member).ok();
    let me = match (&member, &c.shared.encryption_key) {
        (Some(m), Some(k)) => Some((m, &k.0)),
        _ => None,
    };
    let shown = experts::view::view(&view, &ext, me);
    let rederived = ext.published.as_ref().map(|p| {
        let picks = experts::candidates(&view, ext.id)
            .ok_or_else(|| "没有候选名单".to_string())
            .and_then(|cands| experts::rederive(&ext, &cands, &p.secret));
        (picks, experts::check_published(&view, &ext))
    });
    let expert_name = |id: &Hash| {
        experts::expert(&view, id)
            .map(|e| e.name)
            .unwrap_or_default()
    };
    let body = html! {
        h1 { "抽取 " (ext.id) " · 项目 " (ext.project_code) }
        p.notice #view-kind { (view_text(shown.view)) }
        dl.facts {
            dt { "申请成员" } dd { (ext.requester.as_str()) }
            dt { "评标时间" } dd { (beijing(ext.window.start)) " 至 " (beijing(ext.window.end)) }
            dt { "状态" } dd { (status_text(&ext.status)) }
            dt { "承诺 (SHA-256(secret))" } dd { code { (ext.commitment.to_hex()) } }
            @if let Some(a) = &ext.anchor { dt { "锚定区块" } dd { (a.height) " " (short(&a.hash.to_hex())) } }
            dt { "各需求候选人数" } dd { (ext.eligible.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(", ")) }
            @if let Some(r) = &ext.remote { dt { "远程异地评标" } dd { "参与成员 " (r.members.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(", ")) ", 外地专家至少 " (r.min_outside) " 名" } }
        }
        @if let Some((picks, check)) = &rederived {
            @let p = ext.published.as_ref().expect("published");
            h2 { "揭示与核验" }
            p #chain-verdict .verdict.ok[p.verdict == Verdict::Verified] .bad[p.verdict != Verdict::Verified] role="status" {
                @match &p.verdict {
                    Verdict::Verified => "✔ 链上核验通过: 每个席位都与重新推导的抽取结果一致, 回避规则成立",
                    Verdict::Failed { .. } => "✘ 链上核验未通过",
                }
            }
            p { "本节点重新核验: " @match check {
                Ok(Verdict::Verified) => span #recheck .ok { "✔ 一致" },
                Ok(Verdict::Failed { problems }) => span #recheck .bad { "✘ " (problems.join("; ")) },
                Err(e) => span #recheck .bad { "✘ " (e) },
            } }
            @if let Verdict::Failed { problems } = &p.verdict { ul { @for pr in problems { li.bad { (pr) } } } }
            table #seats {
                thead { tr { th scope="col" { "需求" } th scope="col" { "席位" } th scope="col" { "所属成员" } th scope="col" { "类型" } th scope="col" { "应答" } th scope="col" { "密封的专家" } th scope="col" { "重新推导的专家" } th scope="col" { "一致" } } }
                tbody {
                    @for s in &shown.slots {
                        @let (r, j) = (s.requirement as usize - 1, s.slot as usize - 1);
                        @let derived = picks.as_ref().ok().and_then(|pk| pk.get(r)).and_then(|pk| {
                            let count = pk.primaries.len();
                            if j < count { pk.primaries.get(j) } else { pk.backups.get(j - count) }
                        });
                        @let same = s.expert.is_some() && s.expert.as_ref() == derived;
                        tr {
                            td { (s.requirement) " " code { (s.specialty) } }
                            td { (s.slot) }
                            td { (s.home.as_str()) }
                            td { @if s.backup { "备选" } @else { "正选" } @if s.seated { " · 入席" } }
                            td { (answer_text(s.answer)) }
                            td { @if let Some(e) = &s.expert { (short(&e.to_hex())) " " (expert_name(e)) } @else { "—" } }
                            td { @if let Some(e) = derived { (short(&e.to_hex())) } @else { "—" } }
                            td { (yes_no(same, "一致", "不一致")) }
                        }
                    }
                }
            }
            @if let Err(e) = picks { p.error { "无法重新推导: " (e) } }
        } @else {
            h2 { "席位 (" (shown.slots.len()) ")" }
            table #seats {
                thead { tr { th scope="col" { "需求" } th scope="col" { "席位" } th scope="col" { "所属成员" } th scope="col" { "类型" } th scope="col" { "应答" } th scope="col" { "专家" } th scope="col" { "席位承诺" } } }
                tbody {
                    @for s in &shown.slots {
                        tr {
                            td { (s.requirement) " " code { (s.specialty) } }
                            td { (s.slot) }
                            td { (s.home.as_str()) }
                            td { @if s.backup { "备选" } @else { "正选" } @if s.seated { " · 入席" } }
                            td { (answer_text(s.answer)) }
                            td { @match &s.expert { Some(e) => { (short(&e.to_hex())) " " (expert_name(e)) }, None => "(密封)" } }
                            td { (short(&s.commitment.to_hex())) }
                        }
                    }
                }
            }
        }
    };
    Ok(super::page(
        c,
        viewer,
        &format!("抽取 {}", ext.id),
        Nav::Experts,
        body,
    ))
}
