//! A model folder as one download: a zip (stored, not deflated: safetensors barely compresses)
//! behind a `blob:` URL, which the page can open because it shares the worker's origin.

use std::io::{Cursor, Write};

use zip::write::SimpleFileOptions;

pub fn zip_folder(folder: &str, files: &[(&str, Vec<u8>)]) -> Result<Vec<u8>, String> {
    let fail = |e: &dyn std::fmt::Display| format!("could not build the zip: {e}");
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    // Files over 4 GiB would need zip64; the option costs nothing here.
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored).large_file(true);
    for (name, bytes) in files {
        writer.start_file(format!("{folder}/{name}"), options).map_err(|e| fail(&e))?;
        writer.write_all(bytes).map_err(|e| fail(&e))?;
    }
    Ok(writer.finish().map_err(|e| fail(&e))?.into_inner())
}

pub fn blob_url(bytes: &[u8], mime: &str) -> Result<String, String> {
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(bytes));
    let props = web_sys::BlobPropertyBag::new();
    props.set_type(mime);
    let blob = web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &props)
        .map_err(|e| format!("could not hold the file: {e:?}"))?;
    web_sys::Url::create_object_url_with_blob(&blob).map_err(|e| format!("could not offer the file: {e:?}"))
}
