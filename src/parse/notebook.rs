//! Notebooks run in batch: `papermill in.ipynb out.ipynb` and `jupyter
//! nbconvert --execute` end with their own Python traceback, whose
//! exception (`PapermillExecutionError`, `CellExecutionError`) carries the
//! failing cell's traceback, in IPython's form ([`super::ipython`]), as its
//! message:
//!
//! ```text
//!   File "/env/lib/python3.12/site-packages/papermill/execute.py", line 251, in raise_for_execution_errors
//!     raise error
//! papermill.exceptions.PapermillExecutionError:
//! ---------------------------------------------------------------------------
//! Exception encountered at "In [2]":
//! ---------------------------------------------------------------------------
//! Exception                                 Traceback (most recent call last)
//! Cell In[2], line 3
//! ----> 3 run()
//! ...
//! Exception: This is an error to test the reporting functionality.
//! ```
//!
//! The failure that counts is the cell's own exception; the wrapper is
//! kept before it in the chain, as its context. This format finds nothing
//! itself: it refines what the Python format found.

use super::{Chain, Failure, Format, Input, Kind, find_nothing, tick};

pub(super) const FORMAT: Format = Format {
    name: "notebook",
    anchors: &[],
    inert_lines: &[],
    find: find_nothing,
    refine,
};

/// The runners' wrapper exceptions (last part of the class name).
const WRAPPERS: [&str; 2] = ["PapermillExecutionError", "CellExecutionError"];

// The signature is the table's, which lets a refinement drop failures.
#[allow(clippy::ptr_arg)]
fn refine(found: &mut Vec<Failure>, _: Input<'_>) {
    for f in found.iter_mut() {
        tick(1);
        let wraps = f.kind == Kind::PythonTraceback
            && f.exception
                .class
                .rsplit('.')
                .next()
                .is_some_and(|c| WRAPPERS.contains(&c));
        if !wraps {
            continue;
        }
        let lines: Vec<&str> = f.exception.message.split('\n').map(str::trim_end).collect();
        let Some(mut cell) = super::ipython::chain_in(&lines) else {
            continue;
        };
        let Some(own) = cell.pop() else {
            continue;
        };
        let mut wrapper = std::mem::replace(&mut f.exception, own);
        wrapper.chain = Some(Chain::Context);
        f.causes.push(wrapper);
        f.causes.extend(cell);
    }
}

#[cfg(test)]
mod tests {
    use crate::parse::{Chain, parse_bytes};

    #[test]
    fn cell_exception_counts() {
        let text = "Traceback (most recent call last):\n  File \"/env/papermill/execute.py\", line 251, in raise_for_execution_errors\n    raise error\npapermill.exceptions.PapermillExecutionError: \n---------------------------------------------------------------------------\nException encountered at \"In [2]\":\n---------------------------------------------------------------------------\nValueError                                Traceback (most recent call last)\nCell In[2], line 3\n      1 x = [1, 2]\n----> 3 f()\n\nFile /env/esa_climate_toolbox/ops.py:5, in f()\n----> 5     raise ValueError(\"shapes differ:\\n3 != 4\")\n\nValueError: shapes differ:\n3 != 4\n";
        let got = parse_bytes(text.as_bytes(), false);
        assert_eq!(got.len(), 1, "{got:#?}");
        let f = &got[0];
        assert_eq!(f.exception.class, "ValueError");
        assert_eq!(f.exception.message, "shapes differ:\n3 != 4");
        assert_eq!(f.exception.frames.len(), 2);
        assert_eq!(f.causes.len(), 1);
        assert_eq!(
            f.causes[0].class,
            "papermill.exceptions.PapermillExecutionError"
        );
        assert_eq!(f.causes[0].chain, Some(Chain::Context));
        assert_eq!(f.causes[0].frames.len(), 1);
    }
}
