//! Renders what the Debian package ships beside the binaries: the man pages
//! and the shell completions. Run by scripts/package.sh (and its test):
//!
//!     cargo run --example pkgdocs -- OUTDIR
//!
//! writes OUTDIR/man/{ipmpd.8,ipmpstat.8,ipmpadm.8,ipmpd.toml.5} and
//! OUTDIR/completions/{bash/CMD,zsh/_CMD,fish/CMD.fish}.
//!
//! The prose of each page is its Markdown page in docs/ (the one source: the
//! Markdown is what the repository shows, the roff is what `man` shows),
//! converted here. A command page's OPTIONS section is not in the Markdown:
//! it is clap_mangen's rendering of the same clap definition the binary
//! parses with, so the page lists exactly the flags the binary takes.

use clap::CommandFactory;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Markdown sources, relative to the repository root.
const DOCS_DIR: &str = "docs";
/// The heading whose Markdown body is replaced by clap_mangen's options.
const OPTIONS_HEADING: &str = "OPTIONS";
/// Indentation of a definition's body and of a code block in the Markdown.
const BLOCK_INDENT: usize = 4;

struct Page {
    name: &'static str,
    section: &'static str,
    /// The command whose options the page lists, if it is a command page.
    command: Option<clap::Command>,
}

fn main() {
    let Some(out) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: pkgdocs OUTDIR");
        std::process::exit(2);
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let pages = [
        Page {
            name: "ipmpd",
            section: "8",
            command: Some(ipmpd::cli::ipmpd::Cli::command()),
        },
        Page {
            name: "ipmpstat",
            section: "8",
            command: Some(ipmpd::cli::ipmpstat::Cli::command()),
        },
        Page {
            name: "ipmpadm",
            section: "8",
            command: Some(ipmpd::cli::ipmpadm::Cli::command()),
        },
        Page {
            name: "ipmpd.toml",
            section: "5",
            command: None,
        },
    ];
    let man_dir = out.join("man");
    mkdir(&man_dir);
    for page in &pages {
        let src = root
            .join(DOCS_DIR)
            .join(format!("{}.{}.md", page.name, page.section));
        let md = std::fs::read_to_string(&src).unwrap_or_else(|e| die(&format!("{}: {e}", src.display())));
        let roff = page_roff(page, &md).unwrap_or_else(|e| die(&format!("{}: {e}", src.display())));
        write(
            &man_dir.join(format!("{}.{}", page.name, page.section)),
            roff.as_bytes(),
        );
    }
    for page in pages.iter().filter(|p| p.command.is_some()) {
        completions(
            &out.join("completions"),
            page.name,
            page.command.clone().expect("a command page"),
        );
    }
}

fn die(msg: &str) -> ! {
    eprintln!("pkgdocs: {msg}");
    std::process::exit(1);
}

fn mkdir(p: &Path) {
    std::fs::create_dir_all(p).unwrap_or_else(|e| die(&format!("{}: {e}", p.display())));
}

fn write(p: &Path, bytes: &[u8]) {
    std::fs::write(p, bytes).unwrap_or_else(|e| die(&format!("{}: {e}", p.display())));
}

/// bash, zsh and fish completions, named as each shell's vendor directory
/// expects them.
fn completions(dir: &Path, name: &str, mut cmd: clap::Command) {
    use clap_complete::Shell;
    for (shell, file) in [
        (Shell::Bash, name.to_string()),
        (Shell::Zsh, format!("_{name}")),
        (Shell::Fish, format!("{name}.fish")),
    ] {
        let sub = dir.join(shell.to_string());
        mkdir(&sub);
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut cmd, name, &mut buf);
        write(&sub.join(file), &buf);
    }
}

/// The whole page: a title line, then the Markdown's sections, with the
/// command's options rendered from its clap definition.
fn page_roff(page: &Page, md: &str) -> Result<String, String> {
    let mut lines = md.lines().peekable();
    let title = lines.next().ok_or("empty page")?;
    let expected = format!("# {}({})", page.name.to_uppercase(), page.section);
    if title.trim() != expected {
        return Err(format!("first line must be \"{expected}\""));
    }
    let manual = if page.section == "5" {
        "File Formats Manual"
    } else {
        "System Manager's Manual"
    };
    let mut out = format!(
        ".TH \"{}\" \"{}\" \"\" \"ipmpd {}\" \"{manual}\"\n",
        page.name.to_uppercase(),
        page.section,
        env!("CARGO_PKG_VERSION")
    );
    // No hyphenation: the pages are full of identifiers (metric names,
    // flags, paths) that a reader copies, and a break inside one puts a
    // hyphen into it.
    out.push_str(".nh\n");
    let body: Vec<&str> = lines.collect();
    let mut options_done = false;
    for (heading, section) in split_sections(&body)? {
        if heading == OPTIONS_HEADING {
            let Some(cmd) = &page.command else {
                return Err("an OPTIONS section in a page without a command".into());
            };
            // Flags described here would never reach the page: they belong
            // in the flag's doc comment.
            if section.iter().any(|l| l.starts_with(":   ")) {
                return Err(format!(
                    "the Markdown's {OPTIONS_HEADING} section describes flags: move them to the clap definition"
                ));
            }
            let mut buf = Vec::new();
            clap_mangen::Man::new(cmd.clone())
                .render_options_section(&mut buf)
                .map_err(|e| e.to_string())?;
            out.push_str(&String::from_utf8(buf).map_err(|e| e.to_string())?);
            options_done = true;
            continue;
        }
        let _ = writeln!(out, ".SH {}", quote_heading(&heading));
        out.push_str(&blocks(&section));
    }
    if page.command.is_some() && !options_done {
        return Err(format!("a command page needs a \"## {OPTIONS_HEADING}\" section"));
    }
    Ok(out)
}

/// `## NAME` sections with their lines.
fn split_sections<'a>(body: &[&'a str]) -> Result<Vec<(String, Vec<&'a str>)>, String> {
    let mut out: Vec<(String, Vec<&'a str>)> = Vec::new();
    for line in body {
        if let Some(h) = line.strip_prefix("## ") {
            out.push((h.trim().to_string(), Vec::new()));
        } else if let Some((_, lines)) = out.last_mut() {
            lines.push(line);
        } else if !line.trim().is_empty() {
            return Err(format!("text before the first section: {line:?}"));
        }
    }
    Ok(out)
}

fn quote_heading(h: &str) -> String {
    format!("\"{}\"", escape_text(h).replace('"', "\\(dq"))
}

/// Renders a run of Markdown blocks: paragraphs, `###` subsections,
/// definition lists (`term` then `:   body`), bullet and numbered lists and
/// indented code.
fn blocks(lines: &[&str]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if line.trim().is_empty() {
            i += 1;
            continue;
        }
        if let Some(h) = line.strip_prefix("### ") {
            let _ = writeln!(out, ".SS {}", quote_heading(h.trim()));
            i += 1;
            continue;
        }
        if indent_of(line) >= BLOCK_INDENT {
            // Indented code: verbatim until a line that is neither blank nor indented.
            let start = i;
            while i < lines.len() && (lines[i].trim().is_empty() || indent_of(lines[i]) >= BLOCK_INDENT) {
                i += 1;
            }
            let mut end = i;
            while end > start && lines[end - 1].trim().is_empty() {
                end -= 1;
            }
            out.push_str(".PP\n.RS 4\n.nf\n");
            for l in &lines[start..end] {
                let _ = writeln!(
                    out,
                    "{}",
                    escape_line(&escape_text(l.get(BLOCK_INDENT..).unwrap_or("")))
                );
            }
            out.push_str(".fi\n.RE\n");
            continue;
        }
        if let Some((marker, width)) = list_marker(line) {
            // One list item: its first line and the lines indented under it.
            let mut item = vec![&line[width..]];
            i += 1;
            while i < lines.len() {
                let l = lines[i];
                let continues = !l.trim().is_empty() && indent_of(l) >= width && list_marker(l).is_none();
                let next_para = l.trim().is_empty()
                    && lines
                        .get(i + 1)
                        .is_some_and(|n| indent_of(n) >= width && !n.trim().is_empty());
                if continues {
                    item.push(&l[width..]);
                } else if next_para {
                    item.push("");
                } else {
                    break;
                }
                i += 1;
            }
            let tag = if marker == "*" {
                "\\(bu".to_string()
            } else {
                marker
            };
            let _ = writeln!(out, ".IP {tag} {}", width + 1);
            out.push_str(&para_text(&item));
            continue;
        }
        if lines.get(i + 1).is_some_and(|n| n.starts_with(":   ")) {
            // A definition: the term, then its body (indented by four).
            let term = line;
            i += 1;
            let mut body: Vec<&str> = vec![&lines[i][BLOCK_INDENT..]];
            i += 1;
            while i < lines.len() {
                let l = lines[i];
                if indent_of(l) >= BLOCK_INDENT && !l.trim().is_empty() {
                    body.push(&l[BLOCK_INDENT..]);
                } else if l.trim().is_empty()
                    && lines
                        .get(i + 1)
                        .is_some_and(|n| indent_of(n) >= BLOCK_INDENT && !n.trim().is_empty())
                {
                    body.push("");
                } else {
                    break;
                }
                i += 1;
            }
            let _ = writeln!(out, ".TP\n{}", escape_line(&inline(term)));
            // The first paragraph is the tag's; the rest nest under it.
            let first_end = body
                .iter()
                .position(|l| l.trim().is_empty())
                .unwrap_or(body.len());
            out.push_str(&para_text(&body[..first_end]));
            if first_end < body.len() {
                out.push_str(".RS\n");
                out.push_str(&blocks(&body[first_end..]));
                out.push_str(".RE\n");
            }
            continue;
        }
        // A paragraph: up to a blank line or another kind of block.
        let start = i;
        while i < lines.len()
            && !lines[i].trim().is_empty()
            && !lines[i].starts_with('#')
            && (i == start || list_marker(lines[i]).is_none())
            && !lines.get(i + 1).is_some_and(|n| n.starts_with(":   "))
        {
            i += 1;
        }
        if i == start {
            // A line no rule took (e.g. a term whose body is missing): plain text.
            i += 1;
        }
        out.push_str(".PP\n");
        out.push_str(&para_text(&lines[start..i]));
    }
    out
}

/// Lines of one block of running text; a blank line inside starts a new
/// paragraph at the same indentation.
fn para_text(lines: &[&str]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim().is_empty() {
            let rest: Vec<&str> = lines[i + 1..].to_vec();
            if indent_of(rest.first().copied().unwrap_or("")) >= BLOCK_INDENT
                || list_marker(rest.first().copied().unwrap_or("")).is_some()
            {
                out.push_str(".RS\n");
                out.push_str(&blocks(&rest));
                out.push_str(".RE\n");
            } else {
                out.push_str(".IP\n");
                out.push_str(&para_text(&rest));
            }
            return out;
        }
        let _ = writeln!(out, "{}", escape_line(&inline(lines[i].trim())));
        i += 1;
    }
    out
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// `* ` or `N. ` at the start of a line: the marker and the width of the
/// text's indentation.
fn list_marker(line: &str) -> Option<(String, usize)> {
    if line.starts_with("* ") {
        return Some(("*".into(), 2));
    }
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    if digits > 0 && line[digits..].starts_with(". ") {
        return Some((line[..digits + 1].to_string(), digits + 2));
    }
    None
}

/// Escapes roff's special characters in plain text.
fn escape_text(s: &str) -> String {
    s.replace('\\', "\\e")
}

/// A text line that starts with a control character is made plain text.
fn escape_line(s: &str) -> String {
    if s.starts_with('.') || s.starts_with('\'') {
        format!("\\&{s}")
    } else {
        s.to_string()
    }
}

/// Inline Markdown: `**bold**`, `*italic*`, `` `code` `` (bold) and the
/// escapes `\\` and `\*`.
fn inline(s: &str) -> String {
    let mut out = String::new();
    let (mut bold, mut italic, mut code) = (false, false, false);
    let font = |bold: bool, italic: bool| match (bold, italic) {
        (true, true) => "\\f(BI",
        (true, false) => "\\fB",
        (false, true) => "\\fI",
        (false, false) => "\\fR",
    };
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if code {
            if c == '`' {
                code = false;
                out.push_str(font(bold, italic));
            } else {
                push_char(&mut out, c, true);
            }
            i += 1;
            continue;
        }
        match c {
            '\\' if i + 1 < chars.len() => {
                push_char(&mut out, chars[i + 1], bold);
                i += 2;
                continue;
            }
            '`' => {
                code = true;
                out.push_str("\\fB");
            }
            '*' if chars.get(i + 1) == Some(&'*') => {
                bold = !bold;
                out.push_str(font(bold, italic));
                i += 2;
                continue;
            }
            '*' => {
                italic = !italic;
                out.push_str(font(bold, italic));
            }
            _ => push_char(&mut out, c, bold),
        }
        i += 1;
    }
    if bold || italic || code {
        out.push_str("\\fR");
    }
    out
}

/// One character of text; in bold (flags, commands) a hyphen is the
/// minus sign, as in option names.
fn push_char(out: &mut String, c: char, literal: bool) {
    match c {
        '\\' => out.push_str("\\e"),
        '-' if literal => out.push_str("\\-"),
        _ => out.push(c),
    }
}
