"""dicomweb-conformance: a pytest conformance suite for DICOMweb servers."""
