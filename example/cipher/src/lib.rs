//! A component of its own world, not an HTTP handler: `encrypt` and `decrypt`
//! (a Caesar shift of SHIFT_AMOUNT, default 3), each call recorded through
//! `rvm:lambda/log`, and `kinds`, one function per family of WIT types.

include!(concat!(env!("OUT_DIR"), "/bindings.rs"));

use exports::rvm::cipher::kinds::{self, Color, Counter, Permissions, Point, Shape};
use rvm::lambda::log::audit;

struct Cipher;

/// The shift when SHIFT_AMOUNT is not set.
const DEFAULT_SHIFT: u8 = 3;

fn shift() -> u8 {
    std::env::var("SHIFT_AMOUNT")
        .ok()
        .and_then(|v| v.parse::<u8>().ok())
        .map_or(DEFAULT_SHIFT, |n| n % 26)
}

/// Shifts ASCII letters by `by` places forward, keeping case; the rest as is.
fn caesar(text: &str, by: u8) -> String {
    text.chars()
        .map(|c| {
            let base = match c {
                'a'..='z' => b'a',
                'A'..='Z' => b'A',
                _ => return c,
            };
            (((c as u8 - base + by) % 26) + base) as char
        })
        .collect()
}

impl Guest for Cipher {
    fn encrypt(message: String) -> String {
        let by = shift();
        audit("encrypt", &format!("{} characters, shift {by}", message.chars().count()));
        caesar(&message, by)
    }

    fn decrypt(message: String) -> String {
        let by = shift();
        audit("decrypt", &format!("{} characters, shift {by}", message.chars().count()));
        caesar(&message, 26 - by)
    }
}

impl kinds::Guest for Cipher {
    type Counter = Tally;

    fn not(value: bool) -> bool {
        !value
    }

    #[allow(clippy::too_many_arguments)]
    fn integers(a: i8, b: u8, c: i16, d: u16, e: i32, f: u32, g: i64, h: u64) -> (i8, u8, i16, u16, i32, u32, i64, u64) {
        (a, b, c, d, e, f, g, h)
    }

    fn halve(x: f64, y: f32) -> (f64, f32) {
        (x / 2.0, y / 2.0)
    }

    fn next_char(c: char) -> char {
        char::from_u32(c as u32 + 1).unwrap_or(c)
    }

    fn shout(text: String) -> String {
        text.to_uppercase()
    }

    fn reverse_bytes(mut bytes: Vec<u8>) -> Vec<u8> {
        bytes.reverse();
        bytes
    }

    fn sort(mut numbers: Vec<i32>) -> Vec<i32> {
        numbers.sort();
        numbers
    }

    fn mirror(p: Point) -> Point {
        Point { x: -p.x, y: -p.y }
    }

    fn grow(s: Shape) -> Shape {
        match s {
            Shape::Circle(r) => Shape::Circle(r * 2.0),
            Shape::Square(side) => Shape::Square(side * 2.0),
            Shape::Dot => Shape::Circle(1.0),
        }
    }

    fn next_color(c: Color) -> Color {
        match c {
            Color::Red => Color::Green,
            Color::Green => Color::Blue,
            Color::Blue => Color::Red,
        }
    }

    fn find(words: Vec<String>, word: String) -> Option<u32> {
        words.iter().position(|w| *w == word).map(|i| i as u32)
    }

    fn parse(text: String) -> Result<i64, String> {
        text.trim().parse().map_err(|e| format!("{text:?}: {e}"))
    }

    fn toggle_write(p: Permissions) -> Permissions {
        p ^ Permissions::WRITE
    }

    fn nothing() {}

    fn make_counter() -> Counter {
        Counter::new(Tally)
    }

    /// Loops `rounds` times: a call that burns fuel, or time.
    fn spin(rounds: u64) -> u64 {
        let mut x = 0u64;
        for i in 0..rounds {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        x
    }

    /// Holds `mebibytes` of memory: a call that meets the memory limit.
    fn hoard(mebibytes: u32) -> u32 {
        let held = vec![1u8; mebibytes as usize * (1 << 20)];
        std::hint::black_box(&held).len() as u32 >> 20
    }

    /// Panics: a call that traps.
    fn fail(message: String) {
        panic!("{message}");
    }
}

/// The resource `make-counter` returns: a function that cannot be called with JSON.
struct Tally;

impl kinds::GuestCounter for Tally {
    fn new() -> Tally {
        Tally
    }
}

export!(Cipher);
