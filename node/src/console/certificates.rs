//! CA 互认: the registered CAs and which members recognize each, and a bidder's certificate
//! (PEM or DER, uploaded or pasted) checked for the whole alliance and for every member, with
//! every reason one does not recognize it.

use axum::extract::{Extension, Multipart, State};
use axum::response::Response;
use caihong_chaincode::ca::{self, Scope, Verification};
use caihong_chaincode::members::MemberId;
use maud::{Markup, html};

use super::{
    Console, Nav, PageError, PageResult, ROOT, Viewer, all_members, beijing, render, short, state,
    yes_no,
};

pub(super) async fn page(State(c): State<Console>, found: Option<Extension<Viewer>>) -> Response {
    render(c, found, move |c, viewer| issuers_page(c, viewer, None)).await
}

/// Largest certificate taken (a certificate is a few kilobytes).
const MAX_CERTIFICATE: usize = 64 << 10;

pub(super) async fn verify(
    State(c): State<Console>,
    found: Option<Extension<Viewer>>,
    mut form: Multipart,
) -> Response {
    let mut uploaded = Vec::new();
    let mut pasted = String::new();
    let mut problem = None;
    loop {
        match form.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or("").to_string();
                match field.bytes().await {
                    Ok(bytes) if name == "file" => uploaded = bytes.to_vec(),
                    Ok(bytes) if name == "pem" => {
                        pasted = String::from_utf8_lossy(&bytes).trim().to_string()
                    }
                    Ok(_) => {}
                    Err(e) => problem = Some(format!("上传未完成: {e}")),
                }
            }
            Ok(None) => break,
            Err(e) => {
                problem = Some(format!("上传的表单无法读取: {e}"));
                break;
            }
        }
    }
    let cert = if !uploaded.is_empty() {
        uploaded
    } else {
        pasted.into_bytes()
    };
    let outcome = match problem {
        Some(p) => Err(p),
        None if cert.is_empty() => {
            Err("没有收到证书: 请选择证书文件 (PEM 或 DER), 或粘贴 PEM 文本".into())
        }
        None if cert.len() > MAX_CERTIFICATE => Err(format!(
            "证书文件有 {} 字节, 超过 {MAX_CERTIFICATE} 字节: 请上传单张证书",
            cert.len()
        )),
        None => Ok(cert),
    };
    render(c, found, move |c, viewer| {
        issuers_page(c, viewer, Some(outcome))
    })
    .await
}

fn check_all(c: &Console, der: &[u8]) -> Result<(Verification, Vec<Verification>), PageError> {
    let view = state(c)?;
    let now = crate::chain::now_ms();
    let bad = |e| PageError::bad(format!("无法解析证书: {e} (应为 X.509 证书, PEM 或 DER)"));
    let alliance = ca::verify(&view, der, Scope::Alliance, now).map_err(bad)?;
    let mut per_member = Vec::new();
    for m in all_members(&view) {
        per_member.push(ca::verify(&view, der, Scope::Member(m.id.clone()), now).map_err(bad)?);
    }
    Ok((alliance, per_member))
}

fn issuers_page(
    c: &Console,
    viewer: &Viewer,
    upload: Option<Result<Vec<u8>, String>>,
) -> PageResult {
    let view = state(c)?;
    let members: Vec<MemberId> = all_members(&view).into_iter().map(|m| m.id).collect();
    let issuers = ca::issuers(&view);
    let result = match upload {
        None => None,
        Some(Err(e)) => Some(Err(e)),
        Some(Ok(der)) => Some(check_all(c, &der).map_err(|e| e.1)),
    };
    let body = html! {
        h1 { "CA 互认" }
        h2 { "验证投标人证书" }
        form #verify-form method="post" action={(ROOT) "/certificates/verify"} enctype="multipart/form-data" {
            p {
                label for="file" { "证书文件 (PEM 或 DER)" }
                input #file type="file" name="file" accept=".pem,.crt,.cer,.der";
            }
            p {
                label for="pem" { "或粘贴 PEM 文本" }
                br;
                textarea #pem name="pem" rows="4" cols="70" placeholder="-----BEGIN CERTIFICATE-----" {}
            }
            button type="submit" { "验证" }
        }
        @match &result {
            None => {},
            Some(Err(e)) => p.error role="alert" { (e) },
            Some(Ok((alliance, per_member))) => (show_result(alliance, per_member)),
        }
        h2 { "已登记的 CA (" (issuers.len()) ")" }
        table #issuers {
            thead { tr {
                th scope="col" { "CA 主题" } th scope="col" { "指纹" } th scope="col" { "层级" }
                th scope="col" { "签名算法" } th scope="col" { "有效期至" } th scope="col" { "登记成员" }
                @for m in &members { th scope="col" { (m.as_str()) " 互认" } }
            } }
            tbody {
                @for i in &issuers {
                    @let by = ca::recognized_by(&view, &i.fingerprint);
                    tr {
                        td { (i.subject) }
                        td { (short(&i.fingerprint.to_hex())) }
                        td { @if i.is_root() { "根 CA" } @else { "中间 CA (上级 " (short(&i.parent.map(|p| p.to_hex()).unwrap_or_default())) ")" } }
                        td { (i.signature_algorithm) }
                        td { (beijing(i.not_after.max(0) as u64 * 1000)) }
                        td { (i.registered_by.as_str()) }
                        @for m in &members { td { (yes_no(by.contains(m), "认可", "不认可")) } }
                    }
                }
            }
        }
    };
    Ok(super::page(c, viewer, "CA 互认", Nav::Certificates, body))
}

fn show_result(alliance: &Verification, per_member: &[Verification]) -> Markup {
    html! {
        section #verify-result aria-labelledby="result-title" {
            h3 #result-title { "证书 " (alliance.subject) }
            dl.facts {
                dt { "指纹" } dd { code { (alliance.fingerprint.to_hex()) } }
                dt { "序列号" } dd { code { (alliance.serial_hex) } }
                @if let Some(u) = &alliance.uscc { dt { "统一社会信用代码" } dd { a href={(ROOT) "/subjects/" (u.as_str())} { (u.as_str()) } } }
                dt { "证书路径" } dd { (alliance.path.iter().map(|p| p.subject.as_str()).collect::<Vec<_>>().join(" → ")) }
            }
            p #alliance-verdict .verdict.ok[alliance.recognized] .bad[!alliance.recognized] role="status" {
                @if alliance.recognized { "✔ 全联盟认可" } @else { "✘ 并非全联盟认可" }
            }
            table #per-member {
                thead { tr { th scope="col" { "成员" } th scope="col" { "结果" } th scope="col" { "原因" } } }
                tbody {
                    @for v in per_member {
                        tr {
                            td { @if let Scope::Member(m) = &v.scope { (m.as_str()) } }
                            td { (yes_no(v.recognized, "认可", "不认可")) }
                            td { @if v.reasons.is_empty() { "—" } @else { ul { @for r in &v.reasons { li { (r.describe()) } } } } }
                        }
                    }
                }
            }
            @if !alliance.notes.is_empty() {
                p { "说明: " (alliance.notes.join("; ")) }
            }
        }
    }
}
