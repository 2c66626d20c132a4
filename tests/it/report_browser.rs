//! report.html in a real browser: headless Chromium (Debian's `chromium`, installed by
//! scripts/install-test-tools) opens it without console errors, takes a screenshot, and finds
//! the charts as SVG elements with one line per application.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::report::{read, rebuilt_run};

/// $SPOTDRILL_CHROMIUM, else `chromium` on PATH.
fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("SPOTDRILL_CHROMIUM") {
        return PathBuf::from(p);
    }
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join("chromium"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!("chromium is not installed: run ./scripts/test, which installs it (apt)")
    })
}

/// What one headless Chromium run printed.
struct Browser {
    stdout: String,
    stderr: String,
}

/// Open `page` in headless Chromium with `flags`, in a profile of its own; at most 60 s.
fn open(page: &Path, flags: &[&str]) -> Browser {
    let profile = tempfile::tempdir().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let (stdout_path, stderr_path) = (out_dir.path().join("out"), out_dir.path().join("err"));
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(flags)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .expect("chromium starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let b = Browser {
        stdout: std::fs::read_to_string(stdout_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(stderr_path).unwrap_or_default(),
    };
    assert!(
        status.success(),
        "chromium failed ({status}):\n{}",
        b.stderr
    );
    b
}

/// Lines of the page's console (messages, uncaught errors, CSP violations) in Chromium's log.
fn console_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
        .collect()
}

#[test]
fn console_check_sees_errors_on_a_broken_page() {
    // The detector itself: a page with errors must trip it, or the real check proves nothing.
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("broken.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><body><p>x</p>\
         <script>console.error('boom'); notDefined();</script></body></html>",
    )
    .unwrap();
    let b = open(&page, &["--dump-dom"]);
    let lines = console_lines(&b.stderr);
    assert!(lines.iter().any(|l| l.contains("boom")), "{}", b.stderr);
    assert!(
        lines.iter().any(|l| l.contains("Uncaught ReferenceError")),
        "{}",
        b.stderr
    );
}

#[test]
fn html_report_opens_in_chromium_without_console_errors_and_screenshots() {
    let run = rebuilt_run();
    let page = run.path().join("report.html");
    let b = open(&page, &["--dump-dom"]);
    assert_eq!(console_lines(&b.stderr), Vec::<&str>::new());
    assert!(
        b.stdout
            .contains("<h1>spotdrill report: report fixture</h1>"),
        "{}",
        b.stdout
    );

    // The screenshot is kept in the target directory for people (and CI artifacts) to look at.
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-fixture.png");
    let _ = std::fs::remove_file(&shot);
    let b = open(
        &page,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1200,2000",
        ],
    );
    assert_eq!(console_lines(&b.stderr), Vec::<&str>::new());
    let png = std::fs::read(&shot).unwrap_or_else(|e| panic!("no screenshot: {e}\n{}", b.stderr));
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert_eq!((width, height), (1200, 2000));
    // A blank page compresses to a few kilobytes; tables, text and charts do not.
    assert!(
        png.len() > 60_000,
        "screenshot looks empty: {} bytes",
        png.len()
    );
}

/// Appended to a copy of the page: counts what the browser built, into the DOM it dumps.
const DOM_PROBE: &str = r#"<script>
const figures = [...document.querySelectorAll('figure.chart')].map(f => {
  const svg = f.querySelector('svg');
  const paths = svg ? [...svg.querySelectorAll('path')] : [];
  return {
    target: f.dataset.target,
    step: f.dataset.step,
    applications: Number(f.dataset.applications),
    svg: svg instanceof SVGSVGElement,
    width: svg ? svg.getBoundingClientRect().width : 0,
    paths: paths.length,
    svgPaths: paths.filter(p => p instanceof SVGPathElement).length,
    drawn: paths.filter(p => p.getTotalLength() > 50).map(p => p.dataset.application),
  };
});
const pre = document.createElement('pre');
pre.id = 'probe';
pre.textContent = JSON.stringify(figures);
document.body.appendChild(pre);
</script>"#;

#[test]
fn charts_are_svg_elements_with_one_path_per_application() {
    let run = rebuilt_run();
    let html = read(run.path(), "report.html");
    // The report forbids scripts (its content security policy); the probe's copy allows them.
    let csp_start = html
        .find("<meta http-equiv=\"Content-Security-Policy\"")
        .unwrap();
    let csp_end = csp_start + html[csp_start..].find('>').unwrap() + 1;
    let probed = format!("{}{}", &html[..csp_start], &html[csp_end..])
        .replace("</body>", &format!("{DOM_PROBE}</body>"));
    let page = run.path().join("probed.html");
    std::fs::write(&page, probed).unwrap();
    let b = open(&page, &["--dump-dom", "--window-size=1200,2000"]);
    assert_eq!(console_lines(&b.stderr), Vec::<&str>::new());
    let json = b
        .stdout
        .split_once("<pre id=\"probe\">")
        .and_then(|(_, rest)| rest.split_once("</pre>"))
        .map(|(json, _)| json.replace("&quot;", "\"").replace("&amp;", "&"))
        .unwrap_or_else(|| panic!("the probe did not run:\n{}", b.stdout));
    let figures: serde_json::Value = serde_json::from_str(&json).expect("probe JSON");
    let figures = figures.as_array().unwrap();
    let shown: Vec<(String, String)> = figures
        .iter()
        .map(|f| {
            (
                f["target"].as_str().unwrap().to_owned(),
                f["step"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("storm-lab", "1"),
        ("storm-lab", "2"),
        ("mesos-lab", "1"),
        ("mesos-lab", "2"),
    ]
    .iter()
    .map(|(t, s)| ((*t).to_owned(), (*s).to_owned()))
    .collect();
    assert_eq!(shown, expected);
    for f in figures {
        let apps = if f["target"] == "storm-lab" { 2 } else { 1 };
        assert_eq!(f["applications"], apps, "{f}");
        assert_eq!(f["svg"], true, "{f}");
        assert!(f["width"].as_f64().unwrap() > 300.0, "{f}");
        assert_eq!(f["paths"], apps, "{f}");
        assert_eq!(f["svgPaths"], apps, "{f}");
        // Every application's line is actually drawn (has length on the page).
        assert_eq!(f["drawn"].as_array().unwrap().len(), apps, "{f}");
    }
}
