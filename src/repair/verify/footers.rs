//! A Parquet object's row count from its footer, in one range read.

use futures::future::BoxFuture;
use futures::FutureExt;
use object_store::path::Path;
use parquet::arrow::async_reader::MetadataFetch;
use parquet::errors::ParquetError;
use parquet::file::metadata::ParquetMetaDataReader;

use crate::error::{Result, StoreOp};
use crate::lake::store::{store_error, Lake};

/// Bytes read from the end of a Parquet file to get its footer in one request (a footer of the
/// access table is about 4 KiB per row group). A larger footer takes a second request; the rest
/// of the file is never read.
pub const FOOTER_PREFETCH: usize = 64 * 1024;
/// Range reads of a footer (the size comes from the listing, so no HEAD).
struct FooterFetch<'a> {
    lake: &'a Lake,
    path: Path,
}

impl MetadataFetch for FooterFetch<'_> {
    fn fetch(
        &mut self,
        range: std::ops::Range<u64>,
    ) -> BoxFuture<'_, parquet::errors::Result<bytes::Bytes>> {
        let (lake, path) = (self.lake, &self.path);
        async move {
            lake.get_range(path, range)
                .await
                .map_err(|e| ParquetError::External(Box::new(e)))
        }
        .boxed()
    }
}

/// The row count in a Parquet object's footer, or why it cannot be read. A store failure other
/// than a missing object is an error: it says nothing about the object.
pub(super) async fn footer_rows(
    lake: &Lake,
    key: &str,
    size: u64,
) -> Result<std::result::Result<i64, String>> {
    let path = lake.key_of(key);
    let fetch = FooterFetch {
        lake,
        path: path.clone(),
    };
    match ParquetMetaDataReader::new()
        .with_prefetch_hint(Some(FOOTER_PREFETCH))
        .load_and_finish(fetch, size)
        .await
    {
        Ok(md) => Ok(Ok(md.file_metadata().num_rows())),
        Err(ParquetError::External(e)) => match e.downcast::<object_store::Error>() {
            Ok(e) if matches!(*e, object_store::Error::NotFound { .. }) => {
                Ok(Err("disappeared while being checked".into()))
            }
            Ok(e) => Err(store_error(StoreOp::ReadFooter, &path, *e)),
            Err(e) => Ok(Err(e.to_string())),
        },
        Err(e) => Ok(Err(e.to_string())),
    }
}
