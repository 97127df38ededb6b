//! Dragging panels in edit mode: the header moves a panel, the handle at its bottom right
//! corner resizes it. Pointer events (mouse, pen and touch alike) with pointer capture; the
//! distance the pointer travelled is snapped to whole grid cells ([`snap`]), and every new
//! cell lays the grid out again from the layout the drag started with (the contract's
//! `drop_panel`, which settles as the toolbar's buttons do), so the other panels make room
//! while the drag goes on and a dashed placeholder shows where the panel will land.

use contract::dashboard::{GRID_COLUMNS, MAX_PANEL_HEIGHT, Panel, Place};

/// Height of a grid row (the grid's `auto-rows-[88px]`).
pub const ROW_HEIGHT_PX: f64 = 88.0;
/// The grid's gap (`gap-3`) when the browser does not say.
pub const GAP_PX: f64 = 12.0;

/// What a drag changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DragMode {
    /// By the header: the panel's column and row.
    Move,
    /// By the corner handle: its width and height.
    Resize,
}

/// The distance from one grid cell to the next, in CSS pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pitch {
    pub column_px: f64,
    pub row_px: f64,
}

impl Pitch {
    /// The pitch of a grid `width_px` wide with the given gaps: 12 columns and 11 gaps fill
    /// the width; a row is [`ROW_HEIGHT_PX`] and a gap.
    pub fn of_grid(width_px: f64, column_gap_px: f64, row_gap_px: f64) -> Self {
        let columns = f64::from(GRID_COLUMNS);
        Pitch {
            column_px: ((width_px + column_gap_px) / columns).max(1.0),
            row_px: ROW_HEIGHT_PX + row_gap_px,
        }
    }
}

/// Where a drag that started with the panel at `from` and moved the pointer `(dx_px, dy_px)`
/// puts it: to the nearest whole cell, kept inside the grid (a move keeps the size, a resize
/// keeps the top left corner and stays 1-12 columns and rows).
pub fn snap(mode: DragMode, from: Place, (dx_px, dy_px): (f64, f64), pitch: Pitch) -> Place {
    let cells = |px: f64, pitch_px: f64| (px / pitch_px).round() as i64;
    let (dx, dy) = (cells(dx_px, pitch.column_px), cells(dy_px, pitch.row_px));
    let shift = |start: u32, by: i64, low: u32, high: u32| -> u32 {
        (i64::from(start) + by).clamp(i64::from(low), i64::from(high.max(low))) as u32
    };
    let columns = GRID_COLUMNS;
    match mode {
        DragMode::Move => Place {
            x: shift(from.x, dx, 0, columns.saturating_sub(from.w)),
            y: shift(from.y, dy, 0, contract::dashboard::MAX_PANEL_ROW),
            ..from
        },
        DragMode::Resize => Place {
            w: shift(from.w, dx, 1, columns.saturating_sub(from.x)),
            h: shift(from.h, dy, 1, MAX_PANEL_HEIGHT),
            ..from
        },
    }
}

/// A drag under way.
#[derive(Debug, Clone, PartialEq)]
pub struct Drag {
    /// The dragged panel's index.
    pub index: usize,
    pub mode: DragMode,
    pub pointer_id: i32,
    /// Where the pointer went down (client pixels).
    pub origin_px: (f64, f64),
    pub pitch: Pitch,
    /// The panels as they were when the drag started (a cancelled drag goes back to them).
    pub start: Vec<Panel>,
    /// The dragged panel's place when the drag started, and the one it is dropped on now.
    pub from: Place,
    pub to: Place,
    /// How far the pointer has travelled (client pixels).
    pub offset_px: (f64, f64),
}

/// The CSS grid placement of `place`.
pub fn grid_style(place: Place) -> String {
    format!(
        "grid-column:{} / span {};grid-row:{} / span {}",
        place.x + 1,
        place.w,
        place.y + 1,
        place.h
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const PITCH: Pitch = Pitch {
        column_px: 100.0,
        row_px: 100.0,
    };

    fn place(x: u32, y: u32, w: u32, h: u32) -> Place {
        Place { x, y, w, h }
    }

    #[test]
    fn the_pitch_spreads_the_gaps_over_the_columns() {
        // 12 columns of 88 px and 11 gaps of 12 px.
        let pitch = Pitch::of_grid(12.0 * 88.0 + 11.0 * 12.0, 12.0, 12.0);
        assert_eq!(pitch.column_px, 100.0);
        assert_eq!(pitch.row_px, 100.0);
        assert_eq!(Pitch::of_grid(0.0, 0.0, 0.0).column_px, 1.0);
    }

    #[test]
    fn moves_snap_to_the_nearest_cell_inside_the_grid() {
        let from = place(2, 3, 4, 2);
        assert_eq!(snap(DragMode::Move, from, (0.0, 0.0), PITCH), from);
        assert_eq!(snap(DragMode::Move, from, (49.0, -49.0), PITCH), from);
        assert_eq!(
            snap(DragMode::Move, from, (51.0, 151.0), PITCH),
            place(3, 5, 4, 2)
        );
        assert_eq!(
            snap(DragMode::Move, from, (-250.0, -180.0), PITCH),
            place(0, 1, 4, 2)
        );
        // Past the edges: the first column, the row 0, the last columns the width allows.
        assert_eq!(
            snap(DragMode::Move, from, (-900.0, -900.0), PITCH),
            place(0, 0, 4, 2)
        );
        assert_eq!(
            snap(DragMode::Move, from, (2_000.0, 0.0), PITCH),
            place(8, 3, 4, 2)
        );
    }

    #[test]
    fn resizes_keep_the_corner_and_stay_in_bounds() {
        let from = place(2, 3, 4, 2);
        assert_eq!(
            snap(DragMode::Resize, from, (260.0, 90.0), PITCH),
            place(2, 3, 7, 3)
        );
        assert_eq!(
            snap(DragMode::Resize, from, (-2_000.0, -2_000.0), PITCH),
            place(2, 3, 1, 1)
        );
        assert_eq!(
            snap(DragMode::Resize, from, (2_000.0, 2_000.0), PITCH),
            place(2, 3, 10, 12)
        );
    }

    #[test]
    fn styles_place_panels_on_the_grid() {
        assert_eq!(
            grid_style(place(0, 2, 6, 4)),
            "grid-column:1 / span 6;grid-row:3 / span 4"
        );
    }
}
