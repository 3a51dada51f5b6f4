//! The toolbox's version, read from the installed package beside the frame
//! that matched (no subprocess is started): the `Version:` line of
//! `esa_climate_toolbox-X.dist-info/METADATA`, else `__version__` in
//! `esa_climate_toolbox/version.py`, else a versioned crate directory
//! (`ect-core-0.3.1`), else `$ECT_TOOLBOX_VERSION`, else `unknown`. A path
//! as IPython prints it, `~/...`, is under `$HOME`.

use std::fs;
use std::path::Path;

pub const VERSION_ENV: &str = "ECT_TOOLBOX_VERSION";

/// Files larger than this are not read: METADATA and version.py are small.
const MAX_READ: u64 = 1 << 20;

pub fn find(matched_path: Option<&str>) -> String {
    matched_path
        .and_then(from_installation)
        .or_else(|| {
            std::env::var(VERSION_ENV)
                .ok()
                .filter(|v| !v.trim().is_empty())
        })
        .unwrap_or_else(|| "unknown".to_string())
}

fn from_installation(path: &str) -> Option<String> {
    let path = path.replace('\\', "/");
    // IPython prints paths under the home directory as `~/...`.
    let path = match (path.strip_prefix("~/"), std::env::var("HOME")) {
        (Some(rest), Ok(home)) if !home.is_empty() => {
            format!("{}/{rest}", home.trim_end_matches('/'))
        }
        _ => path,
    };
    if let Some(idx) = path.find("/esa_climate_toolbox/") {
        let site = Path::new(&path[..idx]);
        if let Some(v) = from_dist_info(site) {
            return Some(v);
        }
        if let Some(v) = from_version_py(&site.join("esa_climate_toolbox").join("version.py")) {
            return Some(v);
        }
    }
    from_crate_dir(&path)
}

fn read_small(path: &Path) -> Option<String> {
    let meta = fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() > MAX_READ {
        return None;
    }
    fs::read_to_string(path).ok()
}

fn from_dist_info(site: &Path) -> Option<String> {
    let mut dirs: Vec<_> = fs::read_dir(site)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("esa_climate_toolbox-") && n.ends_with(".dist-info"))
        .collect();
    // Several versions side by side is a broken install; take the newest
    // name so the answer is at least stable.
    dirs.sort();
    let metadata = read_small(&site.join(dirs.last()?).join("METADATA"))?;
    metadata
        .lines()
        .take_while(|l| !l.is_empty()) // headers end at the first blank line
        .find_map(|l| l.strip_prefix("Version:"))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn from_version_py(path: &Path) -> Option<String> {
    let text = read_small(path)?;
    text.lines().find_map(|l| {
        let rest = l
            .trim()
            .strip_prefix("__version__")?
            .trim_start()
            .strip_prefix('=')?;
        let rest = rest.trim();
        let quote = rest.chars().next().filter(|c| *c == '\'' || *c == '"')?;
        let inner = &rest[1..];
        Some(inner[..inner.find(quote)?].to_string())
    })
}

/// `.../ect-core-0.3.1/src/lib.rs` → `0.3.1`.
fn from_crate_dir(path: &str) -> Option<String> {
    path.split('/').find_map(|part| {
        let is_toolbox = part.starts_with("esa_climate_toolbox-")
            || part.starts_with("ect-")
            || part.starts_with("ect_");
        if !is_toolbox {
            return None;
        }
        let (_, version) = part.rsplit_once('-')?;
        let ok = version.split('.').count() >= 2
            && version.chars().next().is_some_and(|c| c.is_ascii_digit());
        ok.then(|| version.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_dist_info_then_version_py() {
        let dir = tempfile::tempdir().unwrap();
        let site = dir.path().join("site-packages");
        let pkg = site.join("esa_climate_toolbox/util");
        fs::create_dir_all(&pkg).unwrap();
        fs::write(
            site.join("esa_climate_toolbox/version.py"),
            "__version__ = '1.6.0'\n",
        )
        .unwrap();
        let frame = pkg.join("reporting.py").to_string_lossy().into_owned();
        assert_eq!(from_installation(&frame).as_deref(), Some("1.6.0"));
        let info = site.join("esa_climate_toolbox-1.7.2.dist-info");
        fs::create_dir_all(&info).unwrap();
        fs::write(
            info.join("METADATA"),
            "Metadata-Version: 2.1\nName: esa-climate-toolbox\nVersion: 1.7.2\n\nVersion: body\n",
        )
        .unwrap();
        assert_eq!(from_installation(&frame).as_deref(), Some("1.7.2"));
    }

    #[test]
    fn crate_dirs() {
        assert_eq!(
            from_crate_dir("/r/src/idx/ect-core-0.3.1/src/lib.rs").as_deref(),
            Some("0.3.1")
        );
        assert_eq!(from_crate_dir("/home/u/src/ect_demo/src/main.rs"), None);
    }
}
