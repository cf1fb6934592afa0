//! Loss curves as PNG, drawn with plotters' bitmap backend.
//!
//! Text (title, axis labels, tick numbers, legend) is drawn with plotters' `ab_glyph`
//! font backend from a font embedded in the binary ([`FONT_BYTES`], DejaVu Sans, see
//! `assets/fonts/LICENSE-DejaVu.txt`), so no system font library or font file is needed.
//! The font is registered with plotters once per process (see [`ensure_font`]). The RGB
//! buffer is encoded by the `png` crate (no image codecs in plotters).
//!
//! The picture: a light grid over the data range with tick numbers, one coloured line per
//! series ([`SERIES_COLORS`], in order: e.g. train then validation loss), a legend naming
//! each series, a title and the axis labels of [`PlotText`]. Pictures smaller than
//! [`MIN_TEXT_SIZE`] get no text (there is no room for it). [`write_loss_csv`] writes the
//! numbers next to the picture.

use plotters::prelude::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Line colours of the series, in order (cycled).
pub const SERIES_COLORS: [(u8, u8, u8); 4] =
    [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40)];

/// The embedded font (DejaVu Sans; license in `assets/fonts/LICENSE-DejaVu.txt`).
pub const FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// The plotters font family the embedded font is registered under.
const FONT_FAMILY: &str = "sans-serif";

/// Smallest `(width, height)` in pixels that gets text; smaller pictures are drawn
/// without title, labels or legend.
pub const MIN_TEXT_SIZE: (u32, u32) = (160, 120);

/// Colour of all text and the axes.
const TEXT_COLOR: RGBColor = RGBColor(40, 40, 40);

/// A failure to draw or write a plot.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// Nothing to draw, or a non-finite value, or a zero-sized picture.
    #[error("cannot plot: {0}")]
    BadData(String),
    /// plotters reported an error.
    #[error("drawing the plot: {0}")]
    Draw(String),
    /// The embedded font could not be registered with plotters.
    #[error("registering the embedded font: {0}")]
    Font(String),
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
    /// Name (used in the CSV header and the legend).
    pub name: String,
    /// Points, in x order.
    pub points: Vec<(f64, f64)>,
}

/// The text drawn around the plot. Empty strings are not drawn.
#[derive(Clone, Debug, PartialEq)]
pub struct PlotText {
    /// Title above the plot.
    pub title: String,
    /// Label of the x axis.
    pub x_label: String,
    /// Label of the y axis (drawn rotated, left of the tick numbers).
    pub y_label: String,
    /// Whether to draw tick numbers on both axes.
    pub ticks: bool,
    /// Whether to draw a legend naming each series.
    pub legend: bool,
}

impl Default for PlotText {
    /// Title "loss curve", x label "step", y label "loss (nats/char)", tick numbers and
    /// legend.
    fn default() -> Self {
        Self {
            title: "loss curve".into(),
            x_label: "step".into(),
            y_label: "loss (nats/char)".into(),
            ticks: true,
            legend: true,
        }
    }
}

impl PlotText {
    /// No text at all (the plain picture).
    pub fn none() -> Self {
        Self {
            title: String::new(),
            x_label: String::new(),
            y_label: String::new(),
            ticks: false,
            legend: false,
        }
    }

    fn is_empty(&self) -> bool {
        self.title.is_empty()
            && self.x_label.is_empty()
            && self.y_label.is_empty()
            && !self.ticks
            && !self.legend
    }
}

fn draw_err(e: impl std::fmt::Display) -> PlotError {
    PlotError::Draw(e.to_string())
}

/// Registers the embedded font with plotters, once per process; later calls return the
/// first call's outcome.
pub fn ensure_font() -> Result<(), PlotError> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            plotters::style::register_font(FONT_FAMILY, FontStyle::Normal, FONT_BYTES)
                .map_err(|_| "the embedded DejaVu Sans is not a valid font".to_string())
        })
        .clone()
        .map_err(PlotError::Font)
}

/// Decimals for tick numbers over a range of width `span`: enough to tell ticks apart.
fn tick_decimals(span: f64) -> usize {
    let d = 1.0 - span.log10().floor();
    // `span` is positive and finite here; the clamp keeps absurd ranges readable.
    d.clamp(0.0, 6.0) as usize
}

/// Renders the series with the default [`PlotText`] into an RGB buffer of
/// `width x height` pixels (3 bytes per pixel, row-major).
pub fn render(series: &[Series], width: u32, height: u32) -> Result<Vec<u8>, PlotError> {
    render_with(series, width, height, &PlotText::default())
}

/// Renders the series with the given text into an RGB buffer of `width x height` pixels
/// (3 bytes per pixel, row-major). Registers the embedded font first ([`ensure_font`]).
pub fn render_with(
    series: &[Series],
    width: u32,
    height: u32,
    text: &PlotText,
) -> Result<Vec<u8>, PlotError> {
    ensure_font()?;
    render_in_family(series, width, height, text, FONT_FAMILY)
}

/// [`render_with`] drawing text in the plotters font family `family` (which must be
/// registered); separate so tests can check that unregistered fonts fail.
fn render_in_family(
    series: &[Series],
    width: u32,
    height: u32,
    text: &PlotText,
    family: &str,
) -> Result<Vec<u8>, PlotError> {
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
    let with_text = width >= MIN_TEXT_SIZE.0 && height >= MIN_TEXT_SIZE.1 && !text.is_empty();
    // Font size in pixels: 14 px on a 640 x 400 picture, 10..=24 px.
    let fs = (f64::from(width.min(height * 8 / 5)) / 45.0).clamp(10.0, 24.0);
    let fsu = fs as u32;
    let mut buf = vec![0u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        let margin = (width.min(height) / 20).max(2);
        let mut builder = ChartBuilder::on(&root);
        builder.margin(margin);
        if with_text {
            if !text.title.is_empty() {
                builder.caption(
                    &text.title,
                    (family, fs * 1.3).into_font().color(&TEXT_COLOR),
                );
            }
            let tick_area = if text.ticks { fsu * 7 / 2 } else { fsu / 2 };
            let y_area = tick_area
                + if text.y_label.is_empty() {
                    0
                } else {
                    fsu * 3 / 2
                };
            let x_area = if text.ticks { fsu * 3 / 2 } else { fsu / 2 }
                + if text.x_label.is_empty() {
                    0
                } else {
                    fsu * 3 / 2
                };
            builder.x_label_area_size(x_area).y_label_area_size(y_area);
        }
        let mut chart = builder
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(draw_err)?;
        let grid = RGBColor(225, 225, 225);
        if with_text {
            let font = (family, fs).into_font().color(&TEXT_COLOR);
            let (dx, dy) = (tick_decimals(x1 - x0), tick_decimals(y1 - y0));
            let x_fmt = move |v: &f64| format!("{v:.dx$}");
            let y_fmt = move |v: &f64| format!("{v:.dy$}");
            let blank = |_: &f64| String::new();
            let mut mesh = chart.configure_mesh();
            mesh.light_line_style(TRANSPARENT)
                .bold_line_style(grid)
                .axis_style(TEXT_COLOR)
                .x_labels(10)
                .y_labels(10)
                .label_style(font.clone())
                .axis_desc_style(font);
            if text.ticks {
                mesh.x_label_formatter(&x_fmt).y_label_formatter(&y_fmt);
            } else {
                mesh.x_label_formatter(&blank)
                    .y_label_formatter(&blank)
                    .set_all_tick_mark_size(0);
            }
            if !text.x_label.is_empty() {
                mesh.x_desc(&text.x_label);
            }
            if !text.y_label.is_empty() {
                mesh.y_desc(&text.y_label);
            }
            mesh.draw().map_err(draw_err)?;
        } else {
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
        }
        for (i, s) in series.iter().enumerate() {
            let (r, g, b) = SERIES_COLORS[i % SERIES_COLORS.len()];
            let style = ShapeStyle::from(RGBColor(r, g, b)).stroke_width(2);
            chart
                .draw_series(LineSeries::new(s.points.iter().copied(), style))
                .map_err(draw_err)?
                .label(s.name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 2 * fsu as i32, y)], style)
                });
        }
        if with_text && text.legend && !series.is_empty() {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .legend_area_size(fsu * 3)
                .background_style(WHITE.mix(0.9))
                .border_style(TEXT_COLOR)
                .label_font((family, fs).into_font().color(&TEXT_COLOR))
                .draw()
                .map_err(draw_err)?;
        }
        root.present().map_err(draw_err)?;
    }
    Ok(buf)
}

/// Draws the series with the default [`PlotText`] (see the module docs) and writes them
/// as a PNG file of `width x height` pixels.
pub fn plot_loss_curve(
    path: impl AsRef<Path>,
    series: &[Series],
    width: u32,
    height: u32,
) -> Result<(), PlotError> {
    plot_loss_curve_with(path, series, width, height, &PlotText::default())
}

/// [`plot_loss_curve`] with the given text.
pub fn plot_loss_curve_with(
    path: impl AsRef<Path>,
    series: &[Series],
    width: u32,
    height: u32,
    text: &PlotText,
) -> Result<(), PlotError> {
    let path = path.as_ref();
    let rgb = render_with(series, width, height, text)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn curves() -> Vec<Series> {
        let train = (1..=50)
            .map(|s| (f64::from(s), 4.2 * (-f64::from(s) / 20.0).exp() + 1.0))
            .collect();
        let val = (1..=5)
            .map(|k| (f64::from(10 * k), 4.0 * (-f64::from(k) / 2.5).exp() + 1.2))
            .collect();
        vec![
            Series {
                name: "train".into(),
                points: train,
            },
            Series {
                name: "val".into(),
                points: val,
            },
        ]
    }

    /// Pixels whose channels are all below 100: text and axes. The series colours
    /// ([`SERIES_COLORS`]) each have a channel of at least 160 and the grid is light grey,
    /// so neither counts.
    fn dark_in(
        rgb: &[u8],
        width: u32,
        xs: std::ops::Range<u32>,
        ys: std::ops::Range<u32>,
    ) -> usize {
        let mut n = 0;
        for y in ys {
            for x in xs.clone() {
                let i = 3 * (y * width + x) as usize;
                if rgb[i..i + 3].iter().all(|&c| c < 100) {
                    n += 1;
                }
            }
        }
        n
    }

    /// Positions where two renders differ, as `(x, y)`.
    fn diff(a: &[u8], b: &[u8], width: u32) -> Vec<(u32, u32)> {
        assert_eq!(a.len(), b.len());
        a.chunks_exact(3)
            .zip(b.chunks_exact(3))
            .enumerate()
            .filter(|(_, (p, q))| p != q)
            .map(|(i, _)| (i as u32 % width, i as u32 / width))
            .collect()
    }

    // Layout of a 640 x 400 picture with the default text (see `render_in_family`):
    // margin 20 px, font 14 px, title 18 px high at the top, y label area 70 px (the
    // rotated y label in x < 41, tick numbers right-aligned before the 5 px tick marks at
    // x = 84..89), plot area x >= 90, x axis near y = 338 with tick numbers and the x label
    // below it.
    const W: u32 = 640;
    const H: u32 = 400;

    #[test]
    fn png_decodes_with_requested_size_and_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("loss.png");
        let (w, h) = (W, H);
        plot_loss_curve(&path, &curves(), w, h).unwrap();
        let file = std::io::BufReader::new(std::fs::File::open(&path).unwrap());
        let mut reader = png::Decoder::new(file).read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (w, h));
        assert_eq!(info.color_type, png::ColorType::Rgb);
        let px = &buf[..info.buffer_size()];
        // The file holds exactly what `render` draws.
        assert_eq!(px, render(&curves(), w, h).unwrap().as_slice());
        // Glyphs are anti-aliased strokes about 1.5 px wide: a two-or-three-character tick
        // number at 14 px has roughly 15..40 dark pixels, so 8 of them give well over 100.
        let y_ticks = dark_in(px, w, 42..83, 45..335);
        assert!(y_ticks > 100, "{y_ticks} dark pixels in the y tick numbers");
        let y_label = dark_in(px, w, 0..41, 45..335);
        assert!(y_label > 60, "{y_label} dark pixels in the y label");
        let x_ticks = dark_in(px, w, 90..w, 345..362);
        assert!(x_ticks > 100, "{x_ticks} dark pixels in the x tick numbers");
        let x_label = dark_in(px, w, 90..w, 362..h);
        assert!(x_label > 20, "{x_label} dark pixels in the x label");
        let title = dark_in(px, w, 0..w, 0..40);
        assert!(title > 60, "{title} dark pixels in the title");
        // Without text the same regions hold no dark pixel at all (grid and lines only).
        let plain = render_with(&curves(), w, h, &PlotText::none()).unwrap();
        assert_eq!(dark_in(&plain, w, 0..83, 0..h), 0);
        assert_eq!(dark_in(&plain, w, 0..w, 0..40), 0);
        assert_eq!(dark_in(&plain, w, 0..w, 345..h), 0);
    }

    #[test]
    fn text_changes_only_its_own_region() {
        let base = render(&curves(), W, H).unwrap();
        // Another y label: only the y label column changes, and it does change.
        let other = PlotText {
            y_label: "loss (bits/char)".into(),
            ..PlotText::default()
        };
        let d = diff(&base, &render_with(&curves(), W, H, &other).unwrap(), W);
        assert!(d.len() > 20, "{} pixels differ", d.len());
        assert!(d.iter().all(|&(x, _)| x < 41), "{d:?}");
        // Another title: only the top strip changes.
        let other = PlotText {
            title: "validation".into(),
            ..PlotText::default()
        };
        let d = diff(&base, &render_with(&curves(), W, H, &other).unwrap(), W);
        assert!(d.len() > 20, "{} pixels differ", d.len());
        assert!(d.iter().all(|&(_, y)| y < 40), "{d:?}");
        // Other series names: only the legend box (upper right quarter) changes.
        let mut renamed = curves();
        renamed[0].name = "training loss".into();
        renamed[1].name = "validation loss".into();
        let d = diff(&base, &render(&renamed, W, H).unwrap(), W);
        assert!(d.len() > 50, "{} pixels differ", d.len());
        assert!(d.iter().all(|&(x, y)| x > W / 2 && y < H / 2), "{d:?}");
        // The legend names each series: the legend box holds both series colours and text.
        let legend = PlotText {
            legend: false,
            ..PlotText::default()
        };
        let d = diff(&base, &render_with(&curves(), W, H, &legend).unwrap(), W);
        let (lx0, ly0) = (
            d.iter().map(|p| p.0).min().unwrap(),
            d.iter().map(|p| p.1).min().unwrap(),
        );
        let (lx1, ly1) = (
            d.iter().map(|p| p.0).max().unwrap() + 1,
            d.iter().map(|p| p.1).max().unwrap() + 1,
        );
        assert!(
            lx0 > W / 2 && ly1 < H / 2,
            "legend at {lx0}..{lx1} x {ly0}..{ly1}"
        );
        for (r, g, b) in &SERIES_COLORS[..2] {
            let n = (ly0..ly1)
                .flat_map(|y| (lx0..lx1).map(move |x| 3 * (y * W + x) as usize))
                .filter(|&i| base[i..i + 3] == [*r, *g, *b])
                .count();
            assert!(n >= 10, "legend line ({r}, {g}, {b}) on {n} pixels");
        }
        let text = dark_in(&base, W, lx0 + 2..lx1 - 2, ly0 + 2..ly1 - 2);
        assert!(text > 40, "{text} dark pixels in the legend names");
    }

    #[test]
    fn text_needs_a_registered_font() {
        // `render` registers the font itself (no other call needed first) ...
        render(&curves(), W, H).unwrap();
        // ... once: later registrations report the first outcome.
        ensure_font().unwrap();
        ensure_font().unwrap();
        // A family nobody registered: text cannot be drawn, and that is a typed error.
        let r = render_in_family(
            &curves(),
            W,
            H,
            &PlotText::default(),
            "tessera-no-such-font",
        );
        assert!(matches!(r, Err(PlotError::Draw(_))), "{r:?}");
        // Without text no font is needed.
        render_in_family(&curves(), W, H, &PlotText::none(), "tessera-no-such-font").unwrap();
        // Pictures too small for text are drawn without it.
        let tiny = render(&curves(), 100, 80).unwrap();
        assert_eq!(
            tiny,
            render_with(&curves(), 100, 80, &PlotText::none()).unwrap()
        );
        assert_eq!(tiny.len(), 100 * 80 * 3);
        // The smallest picture with text still has room for it.
        let (sw, sh) = MIN_TEXT_SIZE;
        let small = render(&curves(), sw, sh).unwrap();
        assert!(dark_in(&small, sw, 0..sw, 0..sh) > 100);
        assert_ne!(
            small,
            render_with(&curves(), sw, sh, &PlotText::none()).unwrap()
        );
    }
}
