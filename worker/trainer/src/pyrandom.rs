//! Emulation of CPython's `random` module (MT19937) as far as the reference's seeding needs
//! it: `random.seed(int)`, `random.getrandbits(k)` and `random.randint(a, b)`.
//!
//! The reference draws its discard counts from this generator, so the counts (and with
//! them the initial weights) are only reproducible with a bit-exact port.

const STATE_WORDS: usize = 624;
const SHIFT_WORDS: usize = 397;
const MATRIX_A: u32 = 0x9908_b0df;
const UPPER_MASK: u32 = 0x8000_0000;
const LOWER_MASK: u32 = 0x7fff_ffff;

/// A Mersenne Twister seeded the way CPython seeds `random.Random` from an integer.
#[derive(Clone)]
pub struct PyRandom {
    state: [u32; STATE_WORDS],
    index: usize,
}

impl PyRandom {
    /// Creates the generator that `random.seed(seed)` leaves behind.
    ///
    /// CPython uses the absolute value of the seed, split into 32-bit words, least
    /// significant first (`[0]` for zero), as the key of MT19937's `init_by_array`.
    pub fn from_seed(seed: i128) -> Self {
        let mut magnitude = seed.unsigned_abs();
        let mut key = Vec::with_capacity(4);
        loop {
            key.push((magnitude & 0xffff_ffff) as u32);
            magnitude >>= 32;
            if magnitude == 0 {
                break;
            }
        }
        let mut generator = Self {
            state: [0; STATE_WORDS],
            index: STATE_WORDS,
        };
        generator.init_by_array(&key);
        generator
    }

    fn init_genrand(&mut self, seed: u32) {
        self.state[0] = seed;
        for i in 1..STATE_WORDS {
            let previous = self.state[i - 1];
            self.state[i] = 1_812_433_253u32
                .wrapping_mul(previous ^ (previous >> 30))
                .wrapping_add(i as u32);
        }
        self.index = STATE_WORDS;
    }

    fn init_by_array(&mut self, key: &[u32]) {
        self.init_genrand(19_650_218);
        let mut i = 1usize;
        let mut j = 0usize;
        for _ in 0..STATE_WORDS.max(key.len()) {
            let previous = self.state[i - 1];
            self.state[i] = (self.state[i] ^ (previous ^ (previous >> 30)).wrapping_mul(1_664_525))
                .wrapping_add(key[j])
                .wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= STATE_WORDS {
                self.state[0] = self.state[STATE_WORDS - 1];
                i = 1;
            }
            if j >= key.len() {
                j = 0;
            }
        }
        for _ in 0..STATE_WORDS - 1 {
            let previous = self.state[i - 1];
            self.state[i] = (self.state[i]
                ^ (previous ^ (previous >> 30)).wrapping_mul(1_566_083_941))
            .wrapping_sub(i as u32);
            i += 1;
            if i >= STATE_WORDS {
                self.state[0] = self.state[STATE_WORDS - 1];
                i = 1;
            }
        }
        self.state[0] = 0x8000_0000;
    }

    fn regenerate(&mut self) {
        for i in 0..STATE_WORDS {
            let y = (self.state[i] & UPPER_MASK) | (self.state[(i + 1) % STATE_WORDS] & LOWER_MASK);
            let mut next = self.state[(i + SHIFT_WORDS) % STATE_WORDS] ^ (y >> 1);
            if y & 1 != 0 {
                next ^= MATRIX_A;
            }
            self.state[i] = next;
        }
        self.index = 0;
    }

    /// Returns the next 32-bit output of the twister (tempered).
    pub fn next_u32(&mut self) -> u32 {
        if self.index >= STATE_WORDS {
            self.regenerate();
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^= y >> 18;
        y
    }

    /// Emulates `getrandbits(bits)` for 1 <= bits <= 64: 32-bit words fill the result
    /// least significant first, and the last word keeps only its top remaining bits.
    pub fn getrandbits(&mut self, bits: u32) -> u64 {
        debug_assert!((1..=64).contains(&bits));
        if bits <= 32 {
            return u64::from(self.next_u32() >> (32 - bits));
        }
        let low = u64::from(self.next_u32());
        let high = u64::from(self.next_u32() >> (64 - bits));
        (high << 32) | low
    }

    /// Emulates `_randbelow(bound)` (rejection sampling on `getrandbits`), for bound >= 1.
    pub fn randbelow(&mut self, bound: u64) -> u64 {
        debug_assert!(bound >= 1);
        let bits = u64::BITS - bound.leading_zeros();
        loop {
            let candidate = self.getrandbits(bits);
            if candidate < bound {
                return candidate;
            }
        }
    }

    /// Emulates `randint(0, upper)` (both ends inclusive), for 0 <= upper < 2^63.
    pub fn randint_to(&mut self, upper: u64) -> u64 {
        self.randbelow(upper + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::PyRandom;

    // Reference values printed by CPython 3.11.7:
    //   random.seed(42); [random.getrandbits(32) for _ in range(3)]
    //   random.seed(42); [random.randint(0, 100) for _ in range(5)]
    //   random.seed(2**40 + 5); random.getrandbits(32)
    //   random.seed(3141592660); [random.randint(0, 2**40) for _ in range(2)], random.getrandbits(64)
    #[test]
    fn seed_42_raw_words() {
        let mut generator = PyRandom::from_seed(42);
        let words: Vec<u32> = (0..3).map(|_| generator.next_u32()).collect();
        assert_eq!(words, vec![2_746_317_213, 478_163_327, 107_420_369]);
    }

    #[test]
    fn seed_42_randint_sequence() {
        let mut generator = PyRandom::from_seed(42);
        let values: Vec<u64> = (0..5).map(|_| generator.randint_to(100)).collect();
        assert_eq!(values, vec![81, 14, 3, 94, 35]);
    }

    #[test]
    fn multi_word_seed() {
        let mut generator = PyRandom::from_seed((1i128 << 40) + 5);
        assert_eq!(generator.next_u32(), 2_166_296_868);
    }

    #[test]
    fn wide_randint_and_getrandbits() {
        let mut generator = PyRandom::from_seed(3_141_592_660);
        assert_eq!(generator.randint_to(1 << 40), 30_140_163_753);
        assert_eq!(generator.randint_to(1 << 40), 96_641_642_736);
        assert_eq!(generator.getrandbits(64), 4_696_265_838_638_973_463);
    }

    #[test]
    fn negative_seed_uses_magnitude() {
        let mut positive = PyRandom::from_seed(12_345);
        let mut negative = PyRandom::from_seed(-12_345);
        assert_eq!(positive.next_u32(), negative.next_u32());
    }
}
