//! Loss curves as PNG, drawn with plotters' bitmap backend.
//!
//! The build uses plotters without any font backend (no system font libraries, no
//! image codecs: the RGB buffer is encoded by the `png` crate), so the picture has no
//! text: a light 10 x 10 grid over the data range, one coloured line per series
//! ([`SERIES_COLORS`], in order: e.g. train then validation loss). The numbers belong in
//! the progress output and the checkpoint; [`write_loss_csv`] writes them next to the
//! picture.

use plotters::prelude::*;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Line colours of the series, in order (cycled).
pub const SERIES_COLORS: [(u8, u8, u8); 4] =
    [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40)];

/// A failure to draw or write a plot.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// Nothing to draw, or a non-finite value, or a zero-sized picture.
    #[error("cannot plot: {0}")]
    BadData(String),
    /// plotters reported an error.
    #[error("drawing the plot: {0}")]
    Draw(String),
    /// Encoding or writing the file failed.
    #[error("writing `{}`: {message}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
}

/// One named line: `(x, y)` points (e.g. `(step, loss)`).
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Name (used in the CSV header).
    pub name: String,
    /// Points, in x order.
    pub points: Vec<(f64, f64)>,
}

fn draw_err(e: impl std::fmt::Display) -> PlotError {
    PlotError::Draw(e.to_string())
}

/// Renders the series into an RGB buffer of `width x height` pixels (3 bytes per pixel,
/// row-major).
pub fn render(series: &[Series], width: u32, height: u32) -> Result<Vec<u8>, PlotError> {
    if width < 16 || height < 16 {
        return Err(PlotError::BadData(format!(
            "picture of {width} x {height} pixels is too small (16 x 16 at least)"
        )));
    }
    let pts = series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    let mut n = 0usize;
    for &(x, y) in pts {
        if !(x.is_finite() && y.is_finite()) {
            return Err(PlotError::BadData(format!("non-finite point ({x}, {y})")));
        }
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
        n += 1;
    }
    if n == 0 {
        return Err(PlotError::BadData("no points".into()));
    }
    // Degenerate ranges (one point, a flat line) get a unit-wide box around them.
    if x1 - x0 <= 0.0 {
        x0 -= 0.5;
        x1 += 0.5;
    }
    if y1 - y0 <= 0.0 {
        y0 -= 0.5;
        y1 += 0.5;
    }
    let pad = (y1 - y0) * 0.05;
    let (y0, y1) = (y0 - pad, y1 + pad);
    let mut buf = vec![0u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        let margin = (width.min(height) / 20).max(2);
        let mut chart = ChartBuilder::on(&root)
            .margin(margin)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(draw_err)?;
        let grid = RGBColor(225, 225, 225);
        for i in 0..=10 {
            let f = f64::from(i) / 10.0;
            let x = x0 + (x1 - x0) * f;
            let y = y0 + (y1 - y0) * f;
            chart
                .draw_series(LineSeries::new([(x, y0), (x, y1)], grid))
                .map_err(draw_err)?;
            chart
                .draw_series(LineSeries::new([(x0, y), (x1, y)], grid))
                .map_err(draw_err)?;
        }
        for (i, s) in series.iter().enumerate() {
            let (r, g, b) = SERIES_COLORS[i % SERIES_COLORS.len()];
            let style = ShapeStyle::from(RGBColor(r, g, b)).stroke_width(2);
            chart
                .draw_series(LineSeries::new(s.points.iter().copied(), style))
                .map_err(draw_err)?;
        }
        root.present().map_err(draw_err)?;
    }
    Ok(buf)
}

/// Draws the series (see the module docs) and writes them as a PNG file of
/// `width x height` pixels.
pub fn plot_loss_curve(
    path: impl AsRef<Path>,
    series: &[Series],
    width: u32,
    height: u32,
) -> Result<(), PlotError> {
    let path = path.as_ref();
    let rgb = render(series, width, height)?;
    let write_err = |message: String| PlotError::Write {
        path: path.to_path_buf(),
        message,
    };
    let file = std::fs::File::create(path).map_err(|e| write_err(e.to_string()))?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), width, height);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut w = enc.write_header().map_err(|e| write_err(e.to_string()))?;
    w.write_image_data(&rgb)
        .map_err(|e| write_err(e.to_string()))?;
    w.finish().map_err(|e| write_err(e.to_string()))?;
    Ok(())
}

/// Writes the series as CSV: `series,x,y` rows.
pub fn write_loss_csv(path: impl AsRef<Path>, series: &[Series]) -> Result<(), PlotError> {
    let path = path.as_ref();
    let write_err = |e: std::io::Error| PlotError::Write {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).map_err(write_err)?);
    writeln!(f, "series,x,y").map_err(write_err)?;
    for s in series {
        for (x, y) in &s.points {
            writeln!(f, "{},{x},{y}", s.name).map_err(write_err)?;
        }
    }
    f.flush().map_err(write_err)
}
