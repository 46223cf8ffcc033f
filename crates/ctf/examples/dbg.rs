use virtflow_trace::{EventSource, FieldId, Step};
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let mut s = virtflow_ctf::CtfSource::open(std::path::Path::new(&a[1])).unwrap();
    let want: i64 = a[2].parse().unwrap();
    let classes = s.classes().to_vec();
    loop {
        match s.advance() {
            Ok(Step::Event(h)) => {
                if h.ts == want {
                    let c = &classes[h.class.0 as usize];
                    print!("{:?} {} {:?}", h, c.name, s.position());
                    for i in 0..c.fields.len() {
                        print!("{}={:?} ", c.fields[i].name, s.value(FieldId(i as u32)));
                    }
                    println!();
                }
            }
            Ok(Step::End) => break,
            Ok(_) => {}
            Err(e) => { println!("{e}"); break; }
        }
    }
}
